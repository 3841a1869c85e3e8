package image

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// extractPrefix names the active snapshot a layer is unpacked into before its chain ID is known.
const extractPrefix = "extract-"

// layerSource is one layer of an image being written, from whatever source.
type layerSource struct {
	// DiffID is the digest of the uncompressed tar when the source knows it (load, pull): a layer
	// already stored is then skipped without reading it, and the stream is verified against it.
	DiffID digest.Digest
	// Open returns the layer tar, plain or compressed (gzip, bzip2; sniffed).
	Open func() (io.ReadCloser, error)
}

// newImage is everything writeImage needs, whatever produced it.
type newImage struct {
	Layers []layerSource
	// Config returns the config JSON once the layers' diffIDs are known. Its rootfs.diff_ids must
	// equal diffIDs.
	Config func(diffIDs []digest.Digest) ([]byte, error)
	Tags   []reference.Named // normalised, tagged
	// Digests are "name@digest" references (a pull's manifest digest), recorded with the tags.
	Digests []reference.Canonical
	Parent  digest.Digest
}

// movedTag reports a tag that pointed at another image before writeImage took it.
type movedTag struct {
	Ref  reference.Named
	Prev digest.Digest
}

// writeImage is the one way an image enters the store. See the package doc for its guarantees.
func (s *Service) writeImage(ctx context.Context, in newImage) (digest.Digest, []movedTag, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	diffIDs := make([]digest.Digest, 0, len(in.Layers))
	sizes := make([]int64, 0, len(in.Layers))
	parallel := len(in.Layers) > 1 && s.cfg.Snapshotter.Name() == "overlay"
	for _, l := range in.Layers {
		parallel = parallel && l.DiffID != ""
	}
	if parallel {
		var err error
		if sizes, err = s.unpackParallel(ctx, in.Layers); err != nil {
			return "", nil, err
		}
		for _, l := range in.Layers {
			diffIDs = append(diffIDs, l.DiffID)
		}
	} else {
		chain := ""
		for i, l := range in.Layers {
			d, n, err := s.unpack(ctx, chain, l)
			if err != nil {
				return "", nil, fmt.Errorf("layer %d: %w", i+1, err)
			}
			diffIDs = append(diffIDs, d)
			sizes = append(sizes, n)
			chain = chainOf(chain, d)
		}
	}
	cfgBytes, err := in.Config(diffIDs)
	if err != nil {
		return "", nil, err
	}
	var cfg dockerspec.DockerOCIImage
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return "", nil, errdefs.InvalidParameter(fmt.Errorf("invalid image config: %w", err))
	}
	if !slices.Equal(cfg.RootFS.DiffIDs, diffIDs) {
		return "", nil, errdefs.InvalidParameter(fmt.Errorf("image config lists %d layers %v, archive has %v", len(cfg.RootFS.DiffIDs), cfg.RootFS.DiffIDs, diffIDs))
	}
	id, cfgSize, err := s.cfg.Content.WriteBlob(bytes.NewReader(cfgBytes), "")
	if err != nil {
		return "", nil, err
	}
	rec := record{DiffIDs: diffIDs, LayerSizes: sizes, ConfigSize: cfgSize, Parent: in.Parent, Created: time.Now().UTC()}
	if cfg.Created != nil {
		rec.Created = cfg.Created.UTC()
	}
	recBytes, err := json.Marshal(rec)
	if err != nil {
		return "", nil, err
	}
	var moved []movedTag
	err = s.cfg.DB.Update(func(tx *bolt.Tx) error {
		images, tags := tx.Bucket(bucketImages), tx.Bucket(bucketTags)
		if images.Get([]byte(id)) == nil {
			if err := images.Put([]byte(id), recBytes); err != nil {
				return err
			}
		}
		for _, d := range in.Digests {
			if err := tx.Bucket(bucketDigests).Put([]byte(digestKey(d)), []byte(id)); err != nil {
				return err
			}
		}
		for _, t := range in.Tags {
			if prev := tags.Get([]byte(t.String())); prev != nil && digest.Digest(prev) != id {
				moved = append(moved, movedTag{Ref: t, Prev: digest.Digest(prev)})
			}
			if err := tags.Put([]byte(t.String()), []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", nil, errdefs.System(err)
	}
	return id, moved, nil
}

// unpack makes sure the layer on top of parent is stored (blob) and unpacked (committed snapshot named
// by its chain ID), reading the source once at most. It returns the diffID and the tar's size.
func (s *Service) unpack(ctx context.Context, parent string, l layerSource) (digest.Digest, int64, error) {
	chain := ""
	if l.DiffID != "" {
		chain = chainOf(parent, l.DiffID)
	}
	key, d, size, err := s.extract(ctx, chain, parent, l)
	if err != nil || key == "" {
		return d, size, err
	}
	// Commit even when another writer got there first: Conflict means the same content is unpacked.
	if cerr := s.cfg.Snapshotter.Commit(ctx, chainOf(parent, d), key); cerr != nil {
		s.cfg.Snapshotter.Remove(context.WithoutCancel(ctx), key)
		if !errdefs.IsConflict(cerr) {
			return "", 0, cerr
		}
	}
	return d, size, nil
}

// unpackParallel unpacks layers whose diffIDs are all known side by side, each into a snapshot of its
// own, and stacks them in order once every one is in. A pull's layers arrive in parallel, and this
// lets each be unpacked as it arrives instead of waiting for the one below. Overlay only.
func (s *Service) unpackParallel(ctx context.Context, layers []layerSource) ([]int64, error) {
	sn := s.cfg.Snapshotter
	n := len(layers)
	chains := make([]string, n)
	c := ""
	for i, l := range layers {
		c = chainOf(c, l.DiffID)
		chains[i] = c
	}
	keys, sizes, errs := make([]string, n), make([]int64, n), make([]error, n)
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, l := range layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			keys[i], _, sizes[i], errs[i] = s.extract(ctx2, chains[i], "", l)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	var err error
	for i, e := range errs {
		// The first real failure, not the cancellations it caused.
		if e != nil && (err == nil || errors.Is(err, context.Canceled) && !errors.Is(e, context.Canceled)) {
			err = fmt.Errorf("layer %d: %w", i+1, e)
		}
	}
	parent := ""
	for i := range layers {
		if err == nil && keys[i] != "" {
			cerr := sn.CommitOnto(ctx, chains[i], keys[i], parent)
			if cerr == nil {
				keys[i] = ""
			} else if !errdefs.IsConflict(cerr) {
				err = fmt.Errorf("layer %d: %w", i+1, cerr)
			}
		}
		parent = chains[i]
	}
	for _, k := range keys {
		if k != "" {
			sn.Remove(context.WithoutCancel(ctx), k)
		}
	}
	return sizes, err
}

// extract stores the layer's blob and unpacks it into a new active snapshot on top of parent, which
// it returns the key of; key is "" when chain (the layer's chain ID, when known) is unpacked already.
func (s *Service) extract(ctx context.Context, chain, parent string, l layerSource) (key string, d digest.Digest, size int64, err error) {
	sn := s.cfg.Snapshotter
	haveSnapshot := false
	if chain != "" {
		_, err := sn.Stat(ctx, chain)
		haveSnapshot = err == nil
		if size, err := s.cfg.Content.Info(l.DiffID); err == nil && haveSnapshot {
			return "", l.DiffID, size, nil
		}
	}
	rc, err := l.Open()
	if err != nil {
		return "", "", 0, err
	}
	defer rc.Close()
	r, err := decompress(rc)
	if err != nil {
		return "", "", 0, err
	}
	w, err := s.cfg.Content.Writer()
	if err != nil {
		return "", "", 0, err
	}
	defer w.Close()

	if haveSnapshot {
		// Only the blob went missing; store it without unpacking again.
		if _, err := io.Copy(w, archive.ContextReader(ctx, r)); err != nil {
			return "", "", 0, err
		}
		d, size, err := w.Commit(l.DiffID)
		return "", d, size, err
	}

	key = extractPrefix + randomHex()
	if _, err := sn.Prepare(ctx, key, parent); err != nil {
		return "", "", 0, err
	}
	defer func() {
		if err != nil {
			sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	upper, err := sn.UpperDir(ctx, key)
	if err != nil {
		return "", "", 0, err
	}
	opts := archive.ApplyOptions{Overlay: sn.Name() == "overlay"}
	if _, err := archive.Apply(ctx, upper, io.TeeReader(r, w), opts); err != nil {
		if ctx.Err() != nil {
			return "", "", 0, ctx.Err()
		}
		return "", "", 0, errdefs.InvalidParameter(fmt.Errorf("unpack layer: %w", err))
	}
	d, size, err = w.Commit(l.DiffID)
	if err != nil {
		return "", "", 0, err
	}
	return key, d, size, nil
}

// decompress sniffs r and returns the uncompressed stream.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, errdefs.NotImplemented(fmt.Errorf("xz-compressed layers are not supported"))
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, errdefs.NotImplemented(fmt.Errorf("zstd-compressed layers are not supported"))
	}
	return br, nil
}

func randomHex() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
