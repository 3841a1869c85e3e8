package content

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
)

// Store is a blob store rooted at one directory. It is safe for concurrent use: writes are private
// until Commit, and Commit is an atomic rename.
type Store struct {
	root string
}

// Open opens (creating if needed) the store at root. Ingest files left by a crash are removed, so only
// one process may use a root at a time.
func Open(root string) (*Store, error) {
	for _, d := range []string{filepath.Join(root, "blobs", "sha256"), filepath.Join(root, "ingest")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, errdefs.System(err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(root, "ingest"))
	if err != nil {
		return nil, errdefs.System(err)
	}
	for _, e := range ents {
		os.Remove(filepath.Join(root, "ingest", e.Name()))
	}
	return &Store{root: root}, nil
}

// Root is the directory the store was opened at.
func (s *Store) Root() string { return s.root }

// path returns where the blob d lives, refusing digests that are not sha256 or not well formed so that
// a digest from outside can never name a path outside the store.
func (s *Store) path(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid digest %q: %w", d, err))
	}
	if d.Algorithm() != digest.SHA256 {
		return "", errdefs.InvalidParameter(fmt.Errorf("unsupported digest algorithm %q", d.Algorithm()))
	}
	return filepath.Join(s.root, "blobs", "sha256", d.Encoded()), nil
}

// Open opens the blob d for reading; errdefs.NotFound if it is not stored.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	p, err := s.path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.NotFound(fmt.Errorf("content %s: not found", d))
	}
	return f, err
}

// Info returns the size of blob d; errdefs.NotFound if it is not stored.
func (s *Store) Info(d digest.Digest) (int64, error) {
	p, err := s.path(d)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return 0, errdefs.NotFound(fmt.Errorf("content %s: not found", d))
	}
	if err != nil {
		return 0, errdefs.System(err)
	}
	return fi.Size(), nil
}

// Exists reports whether blob d is stored.
func (s *Store) Exists(d digest.Digest) bool {
	_, err := s.Info(d)
	return err == nil
}

// Delete removes blob d; errdefs.NotFound if it is not stored. Readers that already opened it keep
// reading the old inode.
func (s *Store) Delete(d digest.Digest) error {
	p, err := s.path(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errdefs.NotFound(fmt.Errorf("content %s: not found", d))
		}
		return errdefs.System(err)
	}
	return nil
}

// Walk calls fn for every stored blob, stopping at the first error fn returns.
func (s *Store) Walk(fn func(d digest.Digest, size int64) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return errdefs.System(err)
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted while walking
		}
		if err := fn(d, fi.Size()); err != nil {
			return err
		}
	}
	return nil
}

// Writer starts a new blob. Write to it, then Commit; Close without Commit discards it.
func (s *Store) Writer() (*Writer, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, "ingest"), "blob-")
	if err != nil {
		return nil, errdefs.System(err)
	}
	return &Writer{s: s, f: f, h: sha256.New()}, nil
}

// WriteBlob stores everything r yields as one blob, verifying it against expected when that is not "".
func (s *Store) WriteBlob(r io.Reader, expected digest.Digest) (digest.Digest, int64, error) {
	w, err := s.Writer()
	if err != nil {
		return "", 0, err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return "", 0, err
	}
	return w.Commit(expected)
}

// Writer is one blob being ingested. It hashes as it writes, so Commit never rereads the data.
type Writer struct {
	s    *Store
	f    *os.File
	h    hash.Hash
	n    int64
	done bool
}

// Write appends p to the blob.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("content: write after commit or close")
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Digest is the digest of what has been written so far.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Commit makes the blob visible under its digest. With expected != "" a mismatch is an error and
// nothing is stored. Committing a blob that is already stored is a cheap success.
func (w *Writer) Commit(expected digest.Digest) (digest.Digest, int64, error) {
	if w.done {
		return "", 0, errors.New("content: writer already committed or closed")
	}
	w.done = true
	name := w.f.Name()
	defer os.Remove(name) // no-op after a successful rename
	d := w.Digest()
	if expected != "" && expected != d {
		w.f.Close()
		return "", 0, errdefs.InvalidParameter(fmt.Errorf("digest mismatch: expected %s, got %s", expected, d))
	}
	dst, err := w.s.path(d)
	if err != nil {
		w.f.Close()
		return "", 0, err
	}
	if _, err := os.Stat(dst); err == nil {
		w.f.Close()
		return d, w.n, nil
	}
	if err := w.f.Sync(); err != nil {
		w.f.Close()
		return "", 0, errdefs.System(err)
	}
	if err := w.f.Close(); err != nil {
		return "", 0, errdefs.System(err)
	}
	if err := os.Chmod(name, 0o444); err != nil {
		return "", 0, errdefs.System(err)
	}
	if err := os.Rename(name, dst); err != nil {
		return "", 0, errdefs.System(err)
	}
	if dir, err := os.Open(filepath.Dir(dst)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return d, w.n, nil
}

// Close discards the blob unless it was committed. It is safe to call after Commit.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}
