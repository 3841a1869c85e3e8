package image

import (
	"context"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// CommitOptions describe an image made from a container: its image's layers plus one more.
type CommitOptions struct {
	// Parent is the container's image ("sha256:..."); "" for a container without one.
	Parent string
	// Layer is the container's writable layer as a tar, read once.
	Layer io.Reader
	// Config is the container's config; Changes (Dockerfile instructions) are applied on top.
	Config  dockerspec.DockerOCIImageConfig
	Changes []string
	// Ref tags the result ("" leaves it untagged).
	Ref         string
	Author      string
	Comment     string
	ContainerID string
}

// commitConfig adds the fields of Docker's image JSON that a commit fills and DockerOCIImage lacks.
type commitConfig struct {
	dockerspec.DockerOCIImage
	Comment   string `json:"comment,omitempty"`
	Container string `json:"container,omitempty"`
}

// Commit writes the image a container commit makes and returns its ID. Like every other source it ends
// in writeImage: the parent's layers are already stored and are not read again.
func (s *Service) Commit(ctx context.Context, opts CommitOptions) (digest.Digest, error) {
	var tags []reference.Named
	if opts.Ref != "" {
		n, err := parseTag(opts.Ref)
		if err != nil {
			return "", err
		}
		tags = append(tags, n)
	}
	cfg := opts.Config
	if err := applyChanges(&cfg, opts.Changes); err != nil {
		return "", err
	}
	var (
		base     dockerspec.DockerOCIImage
		diffIDs  []digest.Digest
		parentID digest.Digest
	)
	if opts.Parent != "" {
		parentID = digest.Digest(opts.Parent)
		err := s.cfg.DB.View(func(tx *bolt.Tx) error {
			r, err := getRecord(tx, parentID)
			diffIDs = r.DiffIDs
			return err
		})
		if err != nil {
			return "", err
		}
		if base, _, err = s.readConfig(parentID); err != nil {
			return "", err
		}
	} else {
		base.Platform = ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"}
	}
	layers := make([]layerSource, 0, len(diffIDs)+1)
	for _, d := range diffIDs {
		layers = append(layers, layerSource{DiffID: d, Open: func() (io.ReadCloser, error) { return s.cfg.Content.Open(d) }})
	}
	layers = append(layers, layerSource{Open: func() (io.ReadCloser, error) { return io.NopCloser(opts.Layer), nil }})

	created := time.Now().UTC()
	createdBy := strings.Join(append(append([]string{}, opts.Config.Entrypoint...), opts.Config.Cmd...), " ")
	id, _, err := s.writeImage(ctx, newImage{
		Layers: layers,
		Tags:   tags,
		Parent: parentID,
		Config: func(ids []digest.Digest) ([]byte, error) {
			img := commitConfig{DockerOCIImage: base, Comment: opts.Comment, Container: opts.ContainerID}
			img.Created = &created
			img.Author = opts.Author
			img.Config = cfg
			img.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: ids}
			img.History = append(append([]ocispec.History{}, base.History...), ocispec.History{
				Created: &created, CreatedBy: createdBy, Author: opts.Author, Comment: opts.Comment,
			})
			return json.Marshal(img)
		},
	})
	if err == nil && opts.Ref != "" {
		s.event("tag", id.String(), opts.Ref) // as Docker's commit tags through its tag path
	}
	return id, err
}
