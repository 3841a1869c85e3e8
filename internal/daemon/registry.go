package daemon

import (
	"context"
	"io"
	"strings"

	"github.com/berth-dev/berth/internal/reference"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"fmt"
)

// registryBackend serves pull, push and login from the distribution service.
type registryBackend struct{ s *distribution.Service }

func (b registryBackend) Pull(ctx context.Context, ref string, auth *registry.AuthConfig, platform string, allTags bool, progress func(jsonmessage.JSONMessage)) error {
	opts := distribution.PullOptions{Auth: auth, AllTags: allTags}
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

// pullForBuild fetches a build's base image, printing plain progress lines into the build output as
// Docker's legacy builder does.
func (d *Daemon) pullForBuild(ctx context.Context, ref string, auths map[string]registry.AuthConfig, out io.Writer) error {
	var auth *registry.AuthConfig
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		host := reference.Domain(n)
		for k, a := range auths {
			if k == host || strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://"), "/") == host ||
				(host == "docker.io" && strings.Contains(k, "index.docker.io")) {
				a := a
				auth = &a
				break
			}
		}
	}
	_, err := d.dist.Pull(ctx, ref, distribution.PullOptions{Auth: auth}, func(m jsonmessage.JSONMessage) {
		if m.Progress != nil && m.Progress.Total > 0 {
			return // byte counts are for terminals
		}
		switch {
		case m.ID != "" && m.Status != "":
			fmt.Fprintf(out, "%s: %s\n", m.ID, m.Status)
		case m.Status != "":
			fmt.Fprintln(out, m.Status)
		}
	})
	return err
}
