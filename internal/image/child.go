package image

import (
	"context"
	"encoding/json"
	"io"
	"runtime"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// ChildOptions describe an image made from a parent by one build step: the parent's layers, maybe one
// more, an edited config and one more history entry.
type ChildOptions struct {
	// Parent is the image built on ("sha256:..."); "" starts from scratch.
	Parent digest.Digest
	// Layer is the step's layer tar, read once; nil for a step that only edits the config.
	Layer io.Reader
	// Config replaces the parent's runtime config.
	Config dockerspec.DockerOCIImageConfig
	// CreatedBy is the history entry's command; Created stamps both the entry and the image, so a build
	// that passes the same time gets the same image ID for the same content.
	CreatedBy string
	Created   time.Time
	Comment   string
}

// WriteChild writes the image a build step makes and returns its ID. It never tags: a build tags its
// final image only once every step has succeeded.
func (s *Service) WriteChild(ctx context.Context, opts ChildOptions) (digest.Digest, error) {
	var (
		base    dockerspec.DockerOCIImage
		diffIDs []digest.Digest
	)
	if opts.Parent != "" {
		err := s.cfg.DB.View(func(tx *bolt.Tx) error {
			r, err := getRecord(tx, opts.Parent)
			diffIDs = r.DiffIDs
			return err
		})
		if err != nil {
			return "", err
		}
		if base, _, err = s.readConfig(opts.Parent); err != nil {
			return "", err
		}
	} else {
		base.Platform = ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"}
	}
	layers := make([]layerSource, 0, len(diffIDs)+1)
	for _, d := range diffIDs {
		layers = append(layers, layerSource{DiffID: d, Open: func() (io.ReadCloser, error) { return s.cfg.Content.Open(d) }})
	}
	if opts.Layer != nil {
		layers = append(layers, layerSource{Open: func() (io.ReadCloser, error) { return io.NopCloser(opts.Layer), nil }})
	}
	created := opts.Created.UTC()
	id, _, err := s.writeImage(ctx, newImage{
		Layers: layers,
		Parent: opts.Parent,
		Config: func(ids []digest.Digest) ([]byte, error) {
			img := base
			img.Created = &created
			img.Config = opts.Config
			img.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: ids}
			img.History = append(append([]ocispec.History{}, base.History...), ocispec.History{
				Created: &created, CreatedBy: opts.CreatedBy, Comment: opts.Comment, EmptyLayer: opts.Layer == nil,
			})
			return json.Marshal(img)
		},
	})
	return id, err
}

// OpenLayer reads the stored layer tar whose uncompressed digest is diffID.
func (s *Service) OpenLayer(diffID digest.Digest) (io.ReadCloser, error) {
	return s.cfg.Content.Open(diffID)
}
