package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
	bolt "go.etcd.io/bbolt"
)

type factory func(root string, db *bolt.DB) (Snapshotter, error)

func TestOverlay(t *testing.T) {
	testutil.RequireRoot(t)
	if err := Supported(t.TempDir()); err != nil {
		t.Skip(err)
	}
	runSuite(t, NewOverlay)
}

func TestCopy(t *testing.T) {
	testutil.RequireRoot(t)
	runSuite(t, NewCopy)
}

func runSuite(t *testing.T, newFn factory) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, sn Snapshotter, root string)
	}{
		{"PrepareWriteCommit", testPrepareWriteCommit},
		{"ChildSeesParentAndWhiteout", testChildSeesParent},
		{"RemoveWithChildrenRefused", testRemoveWithChildren},
		{"KeyConflicts", testConflicts},
		{"CommitOnto", testCommitOnto},
		{"OrphansRemovedOnOpen", func(t *testing.T, sn Snapshotter, root string) { testOrphans(t, sn, root, newFn) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			db, err := bolt.Open(filepath.Join(root, "meta.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			sn, err := newFn(filepath.Join(root, "snapshots"), db)
			if err != nil {
				t.Fatal(err)
			}
			tc.fn(t, sn, filepath.Join(root, "snapshots"))
		})
	}
}

var ctx = context.Background()

// mountAt mounts a snapshot's mounts on a fresh directory and unmounts it at cleanup.
func mountAt(t *testing.T, mounts []Mount) string {
	t.Helper()
	target := t.TempDir()
	if err := MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unmount(target); err != nil {
			t.Error(err)
		}
	})
	return target
}

// layer writes a tar layer into an active snapshot the way the image service does.
func layer(t *testing.T, sn Snapshotter, key string, files map[string]string, whiteouts ...string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	for _, w := range whiteouts {
		dir, base := filepath.Split(w)
		tw.WriteHeader(&tar.Header{Name: dir + ".wh." + base, Typeflag: tar.TypeReg})
	}
	tw.Close()
	upper, err := sn.UpperDir(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := archive.Apply(ctx, upper, &buf, archive.ApplyOptions{Overlay: sn.Name() == "overlay"}); err != nil {
		t.Fatal(err)
	}
}

func testPrepareWriteCommit(t *testing.T, sn Snapshotter, _ string) {
	mounts, err := sn.Prepare(ctx, "base-active", "")
	if err != nil {
		t.Fatal(err)
	}
	target := mountAt(t, mounts)
	if err := os.WriteFile(filepath.Join(target, "hello"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	Unmount(target)
	if err := sn.Commit(ctx, "sha256:base", "base-active"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Stat(ctx, "base-active"); !errdefs.IsNotFound(err) {
		t.Fatalf("active key still there: %v", err)
	}
	info, err := sn.Stat(ctx, "sha256:base")
	if err != nil || info.Kind != KindCommitted {
		t.Fatalf("Stat = %+v, %v", info, err)
	}
	mounts, _ = sn.Mounts(ctx, "sha256:base")
	ro := mountAt(t, mounts)
	if b, err := os.ReadFile(filepath.Join(ro, "hello")); err != nil || string(b) != "hi" {
		t.Fatalf("committed content: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(ro, "x"), nil, 0o644); err == nil {
		t.Fatal("committed snapshot mounted writable")
	}
}

func testChildSeesParent(t *testing.T, sn Snapshotter, _ string) {
	sn.Prepare(ctx, "l1", "")
	layer(t, sn, "l1", map[string]string{"etc/a": "a", "etc/b": "b"})
	if err := sn.Commit(ctx, "c1", "l1"); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "l2", "c1"); err != nil {
		t.Fatal(err)
	}
	layer(t, sn, "l2", map[string]string{"etc/c": "c"}, "etc/b")
	if err := sn.Commit(ctx, "c2", "l2"); err != nil {
		t.Fatal(err)
	}
	mounts, err := sn.Prepare(ctx, "container", "c2")
	if err != nil {
		t.Fatal(err)
	}
	root := mountAt(t, mounts)
	checkVisible(t, root, map[string]bool{"etc/a": true, "etc/b": false, "etc/c": true})
	// Writes in the container never reach the committed layers.
	os.WriteFile(filepath.Join(root, "etc/a"), []byte("changed"), 0o644)
	mounts, _ = sn.Mounts(ctx, "c2")
	view := mountAt(t, mounts)
	if b, _ := os.ReadFile(filepath.Join(view, "etc/a")); string(b) != "a" {
		t.Fatalf("committed layer changed: %q", b)
	}
	var keys []string
	sn.Walk(ctx, func(i Info) error { keys = append(keys, i.Key+"<"+i.Parent); return nil })
	if got := strings.Join(keys, " "); got != "c1< c2<c1 container<c2" {
		t.Fatalf("Walk = %s", got)
	}
}

func testRemoveWithChildren(t *testing.T, sn Snapshotter, _ string) {
	sn.Prepare(ctx, "l1", "")
	sn.Commit(ctx, "c1", "l1")
	if _, err := sn.Prepare(ctx, "child", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := sn.Remove(ctx, "c1"); !errdefs.IsConflict(err) {
		t.Fatalf("Remove parent = %v, want conflict", err)
	}
	if err := sn.Remove(ctx, "child"); err != nil {
		t.Fatal(err)
	}
	if err := sn.Remove(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := sn.Remove(ctx, "c1"); !errdefs.IsNotFound(err) {
		t.Fatalf("Remove twice = %v", err)
	}
}

func testConflicts(t *testing.T, sn Snapshotter, _ string) {
	if _, err := sn.Prepare(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare(ctx, "k", ""); !errdefs.IsConflict(err) {
		t.Fatalf("Prepare twice = %v", err)
	}
	if _, err := sn.Prepare(ctx, "k2", "nope"); !errdefs.IsNotFound(err) {
		t.Fatalf("Prepare on missing parent = %v", err)
	}
	if _, err := sn.Prepare(ctx, "k3", "k"); err == nil {
		t.Fatal("Prepare on active parent accepted")
	}
	sn.Prepare(ctx, "other", "")
	sn.Commit(ctx, "name", "other")
	if err := sn.Commit(ctx, "name", "k"); !errdefs.IsConflict(err) {
		t.Fatalf("Commit onto existing name = %v", err)
	}
}

func testOrphans(t *testing.T, sn Snapshotter, root string, newFn factory) {
	os.MkdirAll(filepath.Join(root, "999", "fs"), 0o755)
	sn.Prepare(ctx, "kept", "")
	db := sn.(*snapshotter).db
	if _, err := newFn(root, db); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "999")); !os.IsNotExist(err) {
		t.Fatal("orphan directory survived")
	}
	if _, err := sn.UpperDir(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
}

// Layers unpacked side by side and stacked at commit look as if unpacked one on the other.
func testCommitOnto(t *testing.T, sn Snapshotter, _ string) {
	sn.Prepare(ctx, "l1", "")
	sn.Prepare(ctx, "l2", "")
	layer(t, sn, "l2", map[string]string{"etc/c": "c"}, "etc/b")
	layer(t, sn, "l1", map[string]string{"etc/a": "a", "etc/b": "b"})
	if sn.Name() != "overlay" {
		if err := sn.CommitOnto(ctx, "c1", "l1", ""); !errdefs.IsNotImplemented(err) {
			t.Fatalf("copying snapshotter: %v", err)
		}
		return
	}
	if err := sn.CommitOnto(ctx, "c2", "l2", "missing"); !errdefs.IsNotFound(err) {
		t.Fatalf("onto a missing parent: %v", err)
	}
	if err := sn.CommitOnto(ctx, "c1", "l1", ""); err != nil {
		t.Fatal(err)
	}
	if err := sn.CommitOnto(ctx, "c2", "l2", "c1"); err != nil {
		t.Fatal(err)
	}
	mounts, err := sn.Prepare(ctx, "container", "c2")
	if err != nil {
		t.Fatal(err)
	}
	root := mountAt(t, mounts)
	checkVisible(t, root, map[string]bool{"etc/a": true, "etc/b": false, "etc/c": true})
	sn.Prepare(ctx, "l3", "c1")
	if err := sn.CommitOnto(ctx, "c3", "l3", "c2"); !errdefs.IsInvalidParameter(err) {
		t.Errorf("CommitOnto of a snapshot that has a parent: %v", err)
	}
}

func checkVisible(t *testing.T, root string, want map[string]bool) {
	t.Helper()
	for name, w := range want {
		if _, err := os.Stat(filepath.Join(root, name)); (err == nil) != w {
			t.Errorf("%s visible=%v, want %v", name, err == nil, w)
		}
	}
}
