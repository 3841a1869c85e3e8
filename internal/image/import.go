package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImportOptions are `docker import`'s options.
type ImportOptions struct {
	Ref     string   // repository[:tag] to tag the result with; "" leaves it untagged
	Changes []string // Dockerfile instructions: CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD STOPSIGNAL USER VOLUME WORKDIR
	Message string   // commit message, shown as Comment and in history
}

// configWithComment is an image config plus Docker's top-level "comment", which DockerOCIImage lacks.
type configWithComment struct {
	dockerspec.DockerOCIImage
	Comment string `json:"comment,omitempty"`
}

// Import makes a one-layer image from a root filesystem tar (plain, gzip or bzip2) and returns its ID.
func (s *Service) Import(ctx context.Context, src io.Reader, opts ImportOptions) (digest.Digest, error) {
	var tags []reference.Named
	if opts.Ref != "" {
		n, err := parseTag(opts.Ref)
		if err != nil {
			return "", err
		}
		tags = append(tags, n)
	}
	var cfg dockerspec.DockerOCIImageConfig
	if err := applyChanges(&cfg, opts.Changes); err != nil {
		return "", err
	}
	msg := opts.Message
	if msg == "" {
		msg = "Imported from -"
	}
	created := time.Now().UTC()
	id, _, err := s.writeImage(ctx, newImage{
		Layers: []layerSource{{Open: func() (io.ReadCloser, error) { return io.NopCloser(src), nil }}},
		Tags:   tags,
		Config: func(diffIDs []digest.Digest) ([]byte, error) {
			img := configWithComment{Comment: msg}
			img.Created = &created
			img.Platform = ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"}
			img.Config = cfg
			img.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}
			img.History = []ocispec.History{{Created: &created, Comment: msg}}
			return json.Marshal(img)
		},
	})
	if err == nil {
		s.event("import", id.String(), opts.Ref)
	}
	return id, err
}

// parseTag normalises a reference to tag an image with ("busybox" -> docker.io/library/busybox:latest).
func parseTag(ref string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %q: %w", ref, err))
	}
	if _, ok := n.(reference.Digested); ok {
		return nil, errdefs.InvalidParameter(fmt.Errorf("refusing to create a tag with a digest reference"))
	}
	if p := reference.FamiliarName(n); len(p) == 64 && isHex(p) {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", p))
	}
	return reference.TagNameOnly(n), nil
}
