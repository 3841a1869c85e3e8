package image

import (
	"context"
	"io"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/reference"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// RemoteLayer is one layer of an image arriving from a registry.
type RemoteLayer struct {
	DiffID digest.Digest
	// Open returns the layer as the registry serves it (compressed or not; sniffed). It is not called
	// for a layer already stored.
	Open func() (io.ReadCloser, error)
}

// StoreRemote writes an image a registry served: its config (whose digest is the image ID), its layers
// bottom first, the tag it was pulled by (nil for none) and its "name@digest" reference.
// Like every other source it goes through writeImage, so a failed pull leaves no tag and no image.
func (s *Service) StoreRemote(ctx context.Context, config []byte, layers []RemoteLayer, tag reference.Named, canonical reference.Canonical) (digest.Digest, error) {
	in := newImage{Config: func([]digest.Digest) ([]byte, error) { return config, nil }}
	for _, l := range layers {
		in.Layers = append(in.Layers, layerSource{DiffID: l.DiffID, Open: l.Open})
	}
	if tag != nil {
		in.Tags = []reference.Named{reference.TagNameOnly(tag)}
	}
	if canonical != nil {
		in.Digests = []reference.Canonical{canonical}
	}
	id, _, err := s.writeImage(ctx, in)
	if err != nil {
		return "", err
	}
	for _, t := range in.Tags {
		s.event("pull", id.String(), reference.FamiliarString(t))
	}
	return id, nil
}

// LayersPresent reports, for an image's diffIDs bottom first, which layers are already stored and
// unpacked, so that a pull downloads only the others.
func (s *Service) LayersPresent(ctx context.Context, diffIDs []digest.Digest) []bool {
	out := make([]bool, len(diffIDs))
	chain := ""
	for i, d := range diffIDs {
		chain = chainOf(chain, d)
		if _, err := s.cfg.Snapshotter.Stat(ctx, chain); err != nil {
			continue
		}
		if _, err := s.cfg.Content.Info(d); err == nil {
			out[i] = true
		}
	}
	return out
}

// Resolved is what a lookup by reference finds: the image ID, or "" when the reference names nothing.
func (s *Service) Resolved(ref reference.Named) digest.Digest {
	var id digest.Digest
	s.cfg.DB.View(func(tx *bolt.Tx) error {
		id, _, _ = resolve(tx, ref.String())
		return nil
	})
	return id
}

// ConfigBytes returns an image's config exactly as stored (its sha256 is the image ID).
func (s *Service) ConfigBytes(id digest.Digest) ([]byte, error) {
	f, err := s.cfg.Content.Open(id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxConfigSize))
}

// Pushed records that a registry holds image id as tag under c ("name@digest"), and reports the push.
func (s *Service) Pushed(id digest.Digest, tag reference.Named, c reference.Canonical) error {
	err := s.cfg.DB.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDigests).Put([]byte(digestKey(c)), []byte(id))
	})
	if err == nil {
		s.event("push", id.String(), reference.FamiliarString(tag))
	}
	return err
}

// RepoTags lists the tags of one repository ("docker.io/library/busybox"), sorted, with their images:
// what `docker push` without a tag pushes.
func (s *Service) RepoTags(repo reference.Named) []reference.Named {
	var out []reference.Named
	prefix := repo.Name() + ":"
	s.cfg.DB.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTags).ForEach(func(k, _ []byte) error {
			if strings.HasPrefix(string(k), prefix) {
				if n, err := reference.ParseNormalizedNamed(string(k)); err == nil {
					out = append(out, n)
				}
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}
