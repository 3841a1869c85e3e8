package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteEntryAt(t *testing.T) {
	root := t.TempDir()
	tree := filepath.Join(root, "tree")
	mustMkdir(t, filepath.Join(tree, "sub"))
	mustWrite(t, filepath.Join(tree, "sub", "f"), "data")
	if err := os.Link(filepath.Join(tree, "sub", "f"), filepath.Join(tree, "hard")); err != nil {
		t.Fatal(err)
	}
	// A symlink out of the tree is archived as a link, never followed.
	if err := os.Symlink("/etc", filepath.Join(tree, "out")); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	cases := []struct {
		name, as string
		want     []string
	}{
		{"tree", "renamed", []string{"renamed/", "renamed/hard", "renamed/out", "renamed/sub/", "renamed/sub/f"}},
		{"tree", "", []string{"hard", "out", "sub/", "sub/f"}},
		{"tree/sub/f", "g", []string{"g"}},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		dir, base := fd, tc.name
		if strings.Contains(tc.name, "/") {
			sub, err := unix.Open(filepath.Join(root, filepath.Dir(tc.name)), unix.O_PATH|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(sub)
			dir, base = sub, filepath.Base(tc.name)
		}
		if err := WriteEntryAt(context.Background(), &buf, dir, base, tc.as); err != nil {
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
			body, _ := io.ReadAll(tr)
			switch filepath.Base(hdr.Name) {
			case "out":
				if hdr.Typeflag != tar.TypeSymlink || hdr.Linkname != "/etc" {
					t.Errorf("symlink: %+v", hdr)
				}
			case "f", "g":
				if hdr.Typeflag == tar.TypeReg && string(body) != "data" {
					t.Errorf("%s: %q", hdr.Name, body)
				}
			}
		}
		if strings.Join(names, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s as %q: %v, want %v", tc.name, tc.as, names, tc.want)
		}
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
