package build

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzResolveIn checks that resolving a destination through an image's symlinks never leaves the image:
// the result is always a clean absolute path, whatever the links and the path say.
func FuzzResolveIn(f *testing.F) {
	for _, seed := range [][2]string{{"/bin/x", "usr/bin"}, {"/a/b", "../../.."}, {"/l/../../x", "/etc/../.."}, {"/l/l/l", "l"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, p, link string) {
		if strings.ContainsRune(link, 0) || link == "" {
			return
		}
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "usr", "bin"), 0o755)
		for _, name := range []string{"bin", "l", "a"} {
			if err := os.Symlink(link, filepath.Join(dir, name)); err != nil {
				return
			}
		}
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		got := resolveIn(root, "/"+strings.TrimLeft(p, "/"))
		if !strings.HasPrefix(got, "/") || strings.Contains(got+"/", "/../") {
			t.Fatalf("resolveIn(%q) with links to %q = %q", p, link, got)
		}
	})
}

func TestResolveIn(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "usr", "bin"), 0o755)
	os.Symlink("usr/bin", filepath.Join(dir, "bin"))
	os.Symlink("/../../../usr", filepath.Join(dir, "up"))
	os.Symlink("loop", filepath.Join(dir, "loop"))
	root, _ := os.OpenRoot(dir)
	defer root.Close()
	for in, want := range map[string]string{
		"/bin/x": "/usr/bin/x", "/bin": "/usr/bin", "/up/bin/y": "/usr/bin/y", "/new/dir": "/new/dir", "/loop/x": "/loop/x",
	} {
		if got := resolveIn(root, in); got != want {
			t.Errorf("resolveIn(%q) = %q, want %q", in, got, want)
		}
	}
}
