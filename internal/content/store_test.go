package content

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
)

func TestWriteOpenDelete(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := "hello blob"
	want := digest.FromString(data)

	d, n, err := s.WriteBlob(strings.NewReader(data), "")
	if err != nil || d != want || n != int64(len(data)) {
		t.Fatalf("WriteBlob = %s, %d, %v", d, n, err)
	}
	// A second write of the same content is a success and leaves one blob.
	if d2, _, err := s.WriteBlob(strings.NewReader(data), want); err != nil || d2 != want {
		t.Fatalf("rewrite = %s, %v", d2, err)
	}
	f, err := s.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != data {
		t.Fatalf("read %q", got)
	}
	if size, err := s.Info(want); err != nil || size != int64(len(data)) {
		t.Fatalf("Info = %d, %v", size, err)
	}
	count := 0
	s.Walk(func(d digest.Digest, size int64) error { count++; return nil })
	if count != 1 {
		t.Fatalf("Walk saw %d blobs", count)
	}
	if err := s.Delete(want); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(want); !errdefs.IsNotFound(err) {
		t.Fatalf("Open after delete: %v", err)
	}
	if err := s.Delete(want); !errdefs.IsNotFound(err) {
		t.Fatalf("Delete twice: %v", err)
	}
}

func TestCommitMismatchStoresNothing(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.Writer()
	io.WriteString(w, "abc")
	if _, _, err := w.Commit(digest.FromString("other")); err == nil {
		t.Fatal("mismatch accepted")
	}
	if s.Exists(digest.FromString("abc")) || s.Exists(digest.FromString("other")) {
		t.Fatal("blob stored after mismatch")
	}
	assertEmpty(t, filepath.Join(root, "ingest"))
}

func TestAbortAndCrashLeftovers(t *testing.T) {
	root := t.TempDir()
	s, _ := Open(root)
	w, _ := s.Writer()
	io.WriteString(w, "partial")
	// Readers never see an uncommitted blob.
	if s.Exists(digest.FromString("partial")) {
		t.Fatal("partial blob visible")
	}
	w.Close()
	assertEmpty(t, filepath.Join(root, "ingest"))

	// A crash leaves an ingest file behind; reopening cleans it.
	os.WriteFile(filepath.Join(root, "ingest", "blob-123"), []byte("x"), 0o600)
	if _, err := Open(root); err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, filepath.Join(root, "ingest"))
}

func TestBadDigest(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, d := range []digest.Digest{"sha256:../../etc/passwd", "md5:abc", ""} {
		if _, err := s.Open(d); err == nil || errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open(%q) = %v, want invalid", d, err)
		}
	}
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("%s not empty: %v", dir, ents)
	}
}
