package container

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"
)

func changeLines(c []container.FilesystemChange) string {
	var lines []string
	for _, ch := range c {
		lines = append(lines, ch.Kind.String()+" "+ch.Path)
	}
	return strings.Join(lines, "\n")
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The copying snapshotter's layer is a whole tree, compared with the image's.
func TestTreeChangesAndLayer(t *testing.T) {
	old, cur := t.TempDir(), t.TempDir()
	past := time.Unix(1600000000, 0)
	for _, root := range []string{old, cur} {
		write(t, filepath.Join(root, "etc/passwd"), "root\n")
		write(t, filepath.Join(root, "etc/group"), "root\n")
		write(t, filepath.Join(root, "gone/deep/file"), "x")
		for _, p := range []string{"etc/passwd", "etc/group", "etc", "gone/deep/file", "gone/deep", "gone"} {
			os.Chtimes(filepath.Join(root, p), past, past)
		}
	}
	write(t, filepath.Join(cur, "etc/passwd"), "root\nberth\n")
	os.Chtimes(filepath.Join(cur, "etc"), past, time.Now())
	os.RemoveAll(filepath.Join(cur, "gone"))
	write(t, filepath.Join(cur, "new/f"), "n")
	os.Mkdir(filepath.Join(cur, "proc"), 0o755) // a runtime mount point: never shown

	changes, err := treeChanges(context.Background(), cur, old)
	if err != nil {
		t.Fatal(err)
	}
	got := changeLines(dropInitPaths(changes))
	want := "C /etc\nC /etc/passwd\nD /gone\nA /new\nA /new/f"
	if got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}

	var buf bytes.Buffer
	if err := writeLayer(context.Background(), &buf, LayerDirs{Upper: cur, Parent: old}); err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
	}
	if strings.Join(names, ",") != "etc/,etc/passwd,.wh.gone,new/,new/f" {
		t.Errorf("layer: %v", names)
	}
}

// An overlay upper directory: whiteouts are deletions, opaque directories hide what was below.
func TestOverlayChanges(t *testing.T) {
	testutil.RequireRoot(t)
	lower, upper := t.TempDir(), t.TempDir()
	write(t, filepath.Join(lower, "etc/passwd"), "root\n")
	write(t, filepath.Join(lower, "etc/group"), "root\n")
	write(t, filepath.Join(lower, "var/cache/a"), "a")
	write(t, filepath.Join(lower, "var/cache/b"), "b")

	write(t, filepath.Join(upper, "etc/passwd"), "root\nberth\n")
	if err := unix.Mknod(filepath.Join(upper, "etc/group"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(upper, "var/cache/b"), "new b")
	if err := unix.Setxattr(filepath.Join(upper, "var/cache"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("no trusted xattrs here: %v", err)
	}
	write(t, filepath.Join(upper, "added"), "x")
	write(t, filepath.Join(upper, "etc/hostname"), "") // runtime mount point

	changes, err := overlayChanges(context.Background(), LayerDirs{Upper: upper, Lowers: []string{lower}, Overlay: true})
	if err != nil {
		t.Fatal(err)
	}
	got := changeLines(dropInitPaths(changes))
	want := "A /added\nC /etc\nD /etc/group\nC /etc/passwd\nC /var\nC /var/cache\nD /var/cache/a\nC /var/cache/b"
	if got != want {
		t.Errorf("changes:\n%s\nwant:\n%s", got, want)
	}
}

func TestDropInitPathsKeepsRealChanges(t *testing.T) {
	in := []container.FilesystemChange{
		{Path: "/etc", Kind: container.ChangeModify},
		{Path: "/etc/hostname", Kind: container.ChangeAdd},
		{Path: "/etc/hosts", Kind: container.ChangeModify}, // changed, not a fresh mount point: kept
		{Path: "/proc", Kind: container.ChangeAdd},
	}
	if got := changeLines(dropInitPaths(in)); got != "C /etc\nC /etc/hosts" {
		t.Errorf("got %q", got)
	}
	only := []container.FilesystemChange{{Path: "/etc", Kind: container.ChangeModify}, {Path: "/etc/resolv.conf", Kind: container.ChangeAdd}}
	if got := changeLines(dropInitPaths(only)); got != "" {
		t.Errorf("a parent changed only by a mount point: %q", got)
	}
}

func TestStatName(t *testing.T) {
	for in, want := range map[string]string{"/etc": "etc", "/etc/": "etc", "/etc/.": ".", "/": "/", "etc/passwd": "passwd"} {
		if got := statName(in); got != want {
			t.Errorf("statName(%q) = %q, want %q", in, got, want)
		}
	}
}
