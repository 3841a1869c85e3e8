package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestWriteTarRoundTripIsDeterministic(t *testing.T) {
	src, _ := sandbox(t)
	testutil.BusyboxRootfs(t, src)
	os.Link(filepath.Join(src, "etc/passwd"), filepath.Join(src, "etc/passwd-link"))
	unix.Lsetxattr(filepath.Join(src, "etc/group"), "user.test", []byte("1"), 0)

	var first bytes.Buffer
	if err := WriteTar(context.Background(), &first, src); err != nil {
		t.Fatal(err)
	}
	dst, _ := sandbox(t)
	if err := apply(t, dst, first.Bytes(), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var second bytes.Buffer
	if err := WriteTar(context.Background(), &second, dst); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Fatal("archive of the extracted tree differs from the original archive")
	}
	a, _ := os.Stat(filepath.Join(dst, "etc/passwd"))
	b, _ := os.Stat(filepath.Join(dst, "etc/passwd-link"))
	if !os.SameFile(a, b) {
		t.Error("hardlink lost")
	}
	if fi, err := os.Stat(filepath.Join(dst, "bin/busybox")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/busybox: %v %v", fi, err)
	}
}

// TestDiffOfOverlayUpper checks that Diff turns overlay whiteouts back into OCI ones: applying the diff
// by deleting gives the same tree the overlay mount showed.
func TestDiffOfOverlayUpper(t *testing.T) {
	lower, _ := sandbox(t)
	upper, _ := sandbox(t)
	if err := apply(t, lower, baseLayer(t), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, upper, topLayer(t), ApplyOptions{Overlay: true}); err != nil {
		t.Fatal(err)
	}
	var diff bytes.Buffer
	if err := Diff(context.Background(), &diff, upper); err != nil {
		t.Fatal(err)
	}
	copyTree, _ := sandbox(t)
	if err := apply(t, copyTree, baseLayer(t), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, copyTree, diff.Bytes(), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	assertMerged(t, copyTree)
}
