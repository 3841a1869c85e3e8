package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// saveItem is one image to save and the tags to save it under.
type saveItem struct {
	id   digest.Digest
	rec  record
	tags []reference.Named
	plat ocispec.Platform
}

// Save is `docker save`: it writes one tar that is both a docker-save archive (manifest.json) and an
// OCI image layout (oci-layout, index.json, blobs/sha256/...), as Docker 25+ does. Layers are stored
// uncompressed (their blob digest is their diffID). A ref naming a repository without a tag saves every
// tag of it; a ref given as an ID saves the image without tags.
func (s *Service) Save(ctx context.Context, refs []string, w io.Writer) error {
	s.mu.RLock() // no layer may disappear while it streams
	defer s.mu.RUnlock()

	var items []*saveItem
	byID := map[digest.Digest]*saveItem{}
	err := s.cfg.DB.View(func(tx *bolt.Tx) error {
		add := func(id digest.Digest, tag reference.Named) error {
			it := byID[id]
			if it == nil {
				r, err := getRecord(tx, id)
				if err != nil {
					return err
				}
				it = &saveItem{id: id, rec: r}
				byID[id] = it
				items = append(items, it)
			}
			if tag != nil {
				for _, t := range it.tags {
					if t.String() == tag.String() {
						return nil
					}
				}
				it.tags = append(it.tags, tag)
			}
			return nil
		}
		for _, ref := range refs {
			if n, err := reference.ParseNormalizedNamed(ref); err == nil && reference.IsNameOnly(n) {
				// A bare repository name: all its tags, if it has any.
				var matched bool
				err := tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
					t, err := reference.ParseNormalizedNamed(string(k))
					if err != nil || t.Name() != n.Name() {
						return nil
					}
					matched = true
					return add(digest.Digest(v), t)
				})
				if err != nil {
					return err
				}
				if matched {
					continue
				}
			}
			id, named, err := resolve(tx, ref)
			if err != nil {
				return err
			}
			if err := add(id, named); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return errdefs.InvalidParameter(fmt.Errorf("no images to save"))
	}
	for _, it := range items {
		cfg, _, err := s.readConfig(it.id)
		if err != nil {
			return err
		}
		it.plat = ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	}
	sw := &saveWriter{tw: tar.NewWriter(w), s: s, written: map[digest.Digest]bool{}}
	if err := sw.dir("blobs/"); err != nil {
		return err
	}
	if err := sw.dir("blobs/sha256/"); err != nil {
		return err
	}
	var index ocispec.Index
	index.SchemaVersion, index.MediaType = 2, ocispec.MediaTypeImageIndex
	var manifests []dockerManifestEntry
	for _, it := range items {
		desc, entry, err := sw.image(ctx, it)
		if err != nil {
			return err
		}
		manifests = append(manifests, entry)
		if len(it.tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, t := range it.tags {
			d := desc
			d.Annotations = map[string]string{annotationImageName: t.String()}
			if tagged, ok := t.(reference.Tagged); ok {
				d.Annotations[annotationRefName] = tagged.Tag()
			}
			index.Manifests = append(index.Manifests, d)
		}
	}
	if err := sw.json(ociIndexFile, index); err != nil {
		return err
	}
	if err := sw.json(dockerManifestFile, manifests); err != nil {
		return err
	}
	if err := sw.json(ociLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}); err != nil {
		return err
	}
	if err := sw.tw.Close(); err != nil {
		return err
	}
	for _, ref := range refs {
		s.refEvent(ctx, "save", ref)
	}
	return nil
}

// saveWriter writes archive members deterministically (fixed mtime, no owners) and each blob once.
type saveWriter struct {
	tw      *tar.Writer
	s       *Service
	written map[digest.Digest]bool
}

var saveTime = time.Unix(0, 0)

func (sw *saveWriter) dir(name string) error {
	return sw.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: saveTime})
}

func (sw *saveWriter) file(name string, size int64, r io.Reader) error {
	if err := sw.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: saveTime}); err != nil {
		return err
	}
	_, err := io.Copy(sw.tw, r)
	return err
}

func (sw *saveWriter) json(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return sw.file(name, int64(len(b)), bytesReader(b))
}

// blob copies a content-store blob into blobs/sha256/.
func (sw *saveWriter) blob(ctx context.Context, d digest.Digest) (int64, error) {
	size, err := sw.s.cfg.Content.Info(d)
	if err != nil {
		return 0, errdefs.System(fmt.Errorf("blob %s: %w", d, err))
	}
	if sw.written[d] {
		return size, nil
	}
	f, err := sw.s.cfg.Content.Open(d)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := sw.file("blobs/sha256/"+d.Encoded(), size, archive.ContextReader(ctx, f)); err != nil {
		return 0, err
	}
	sw.written[d] = true
	return size, nil
}

func (sw *saveWriter) image(ctx context.Context, it *saveItem) (ocispec.Descriptor, dockerManifestEntry, error) {
	entry := dockerManifestEntry{Config: "blobs/sha256/" + it.id.Encoded(), RepoTags: familiar(it.tags), Layers: []string{}}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Layers: []ocispec.Descriptor{}}
	for _, d := range it.rec.DiffIDs {
		size, err := sw.blob(ctx, d)
		if err != nil {
			return ocispec.Descriptor{}, entry, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: d, Size: size})
		entry.Layers = append(entry.Layers, "blobs/sha256/"+d.Encoded())
	}
	size, err := sw.blob(ctx, it.id)
	if err != nil {
		return ocispec.Descriptor{}, entry, err
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: it.id, Size: size}
	mb, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, entry, err
	}
	md := digest.FromBytes(mb)
	if !sw.written[md] {
		if err := sw.file("blobs/sha256/"+md.Encoded(), int64(len(mb)), bytesReader(mb)); err != nil {
			return ocispec.Descriptor{}, entry, err
		}
		sw.written[md] = true
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mb)),
		Platform: &it.plat}
	return desc, entry, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
