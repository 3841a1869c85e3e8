package daemon

import (
	"context"
	"strings"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"fmt"
)

// registryBackend serves pull, push and login from the distribution service.
type registryBackend struct{ s *distribution.Service }

func (b registryBackend) Pull(ctx context.Context, ref string, auth *registry.AuthConfig, platform string, progress func(jsonmessage.JSONMessage)) error {
	opts := distribution.PullOptions{Auth: auth}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platform = p
	}
	_, err := b.s.Pull(ctx, ref, opts, progress)
	return err
}

func (b registryBackend) Push(ctx context.Context, ref string, auth *registry.AuthConfig, progress func(jsonmessage.JSONMessage)) error {
	return b.s.Push(ctx, ref, auth, progress)
}

func (b registryBackend) Login(ctx context.Context, auth *registry.AuthConfig) (registry.AuthenticateOKBody, error) {
	return b.s.Login(ctx, auth)
}

// parsePlatform reads "os[/arch[/variant]]", the form the CLIs send.
func parsePlatform(s string) (*ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) > 3 || parts[0] == "" {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid platform %q: expected os[/arch[/variant]]", s))
	}
	p := &ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}
