package archive

import (
	"archive/tar"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestApplyBreakouts(t *testing.T) {
	passwd, err := os.Stat("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	nlink := passwd.Sys().(*syscall.Stat_t).Nlink
	cases := []struct {
		name    string
		ents    func(outside string) []ent
		landsAt string // relative to dst, "" when the layer must fail
	}{
		{"dotdot", func(string) []ent { return []ent{{name: "../../x"}} }, "x"},
		{"dotdot-deep", func(string) []ent { return []ent{{name: "a/../../../etc/x"}} }, "etc/x"},
		{"absolute", func(string) []ent { return []ent{{name: "/abs/x"}} }, "abs/x"},
		{"symlink-root", func(string) []ent {
			return []ent{{name: "a", typ: tar.TypeSymlink, link: "/"}, {name: "a/etc/x"}}
		}, "etc/x"},
		{"symlink-relative-up", func(string) []ent {
			return []ent{{name: "b", typ: tar.TypeSymlink, link: "../../.."}, {name: "b/x"}}
		}, "x"},
		{"symlink-absolute-outside", func(o string) []ent {
			return []ent{{name: "c", typ: tar.TypeSymlink, link: o}, {name: "c/x"}}
		}, ""}, // c resolves to <dst>/<outside>, which does not exist: refused, nothing written
		{"symlink-then-file-same-name", func(o string) []ent {
			return []ent{{name: "f", typ: tar.TypeSymlink, link: filepath.Join(o, "f")}, {name: "f", body: "replaced"}}
		}, "f"},
		{"hardlink-host-passwd", func(string) []ent {
			return []ent{{name: "pw", typ: tar.TypeLink, link: "/etc/passwd"}}
		}, ""},
		{"hardlink-through-symlink", func(string) []ent {
			return []ent{{name: "s", typ: tar.TypeSymlink, link: "/etc"}, {name: "h", typ: tar.TypeLink, link: "s/passwd"}}
		}, ""},
		{"hardlink-dotdot", func(string) []ent {
			return []ent{{name: "h", typ: tar.TypeLink, link: "../../../../etc/passwd"}}
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst, outside := sandbox(t)
			ents := tc.ents(outside)
			err := apply(t, dst, mkTar(t, ents...), ApplyOptions{})
			assertUntouched(t, outside)
			if tc.landsAt == "" {
				if err == nil {
					t.Fatal("layer applied, want error")
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Lstat(filepath.Join(dst, tc.landsAt))
				if err != nil || !fi.Mode().IsRegular() {
					t.Fatalf("%s not a file inside dst: %v", tc.landsAt, err)
				}
			}
			now, _ := os.Stat("/etc/passwd")
			if now.Sys().(*syscall.Stat_t).Nlink != nlink {
				t.Fatal("host /etc/passwd gained a link")
			}
		})
	}
}

func TestApplyMetadata(t *testing.T) {
	dst, _ := sandbox(t)
	layer := mkTar(t,
		ent{name: "bin/", typ: tar.TypeDir, mode: 0o711, uid: 3, gid: 4},
		ent{name: "bin/su", body: "suid", mode: 0o4755, uid: 0, gid: 0},
		ent{name: "bin/owned", body: "x", mode: 0o640, uid: 1000, gid: 2000, xattrs: map[string]string{"user.k": "v", "trusted.overlay.redirect": "/evil"}},
		ent{name: "bin/hl", typ: tar.TypeLink, link: "bin/owned"},
		ent{name: "bin/sl", typ: tar.TypeSymlink, link: "owned", uid: 1000, gid: 1000},
		ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666, major: 1, minor: 3},
		ent{name: "dev/fifo", typ: tar.TypeFifo, mode: 0o600},
		ent{name: "implicit/parent/file", body: "deep"},
	)
	if err := apply(t, dst, layer, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	check := func(rel string, mode os.FileMode, uid, gid uint32) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dst, rel))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: mode %v uid %d gid %d, want %v %d %d", rel, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
		}
		if fi.Mode()&os.ModeSymlink == 0 && !fi.ModTime().Equal(epoch) {
			t.Errorf("%s: mtime %v", rel, fi.ModTime())
		}
	}
	check("bin", os.ModeDir|0o711, 3, 4)
	check("bin/su", os.ModeSetuid|0o755, 0, 0)
	check("bin/owned", 0o640, 1000, 2000)
	check("bin/sl", os.ModeSymlink|0o777, 1000, 1000)
	check("dev/null", os.ModeDevice|os.ModeCharDevice|0o666, 0, 0)
	check("dev/fifo", os.ModeNamedPipe|0o600, 0, 0)
	a, _ := os.Stat(filepath.Join(dst, "bin/owned"))
	b, _ := os.Stat(filepath.Join(dst, "bin/hl"))
	if !os.SameFile(a, b) {
		t.Error("hardlink not preserved")
	}
	buf := make([]byte, 16)
	n, err := unix.Lgetxattr(filepath.Join(dst, "bin/owned"), "user.k", buf)
	if err != nil || string(buf[:n]) != "v" {
		t.Errorf("xattr user.k = %q, %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dst, "bin/owned"), "trusted.overlay.redirect", buf); err == nil {
		t.Error("layer set an overlay xattr")
	}
	if readFile(t, filepath.Join(dst, "implicit/parent/file")) != "deep" {
		t.Error("implicit parents")
	}

	dst2, _ := sandbox(t)
	if err := apply(t, dst2, layer, ApplyOptions{NoDevices: true}); err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(dst2, "dev/null")) || !exists(filepath.Join(dst2, "dev/fifo")) {
		t.Error("NoDevices: want no char device, fifo kept")
	}
}

func baseLayer(t testing.TB) []byte {
	return mkTar(t,
		ent{name: "a/", typ: tar.TypeDir},
		ent{name: "a/old", body: "old"},
		ent{name: "a/sub/", typ: tar.TypeDir},
		ent{name: "a/sub/deep", body: "deep"},
		ent{name: "d", body: "gone soon"},
		ent{name: "keep", body: "kept"},
		ent{name: "r/", typ: tar.TypeDir},
		ent{name: "r/lower", body: "lower"},
	)
}

// topLayer deletes d, makes a opaque, and deletes-then-recreates r (which must hide r/lower).
func topLayer(t testing.TB) []byte {
	return mkTar(t,
		ent{name: ".wh.d"},
		ent{name: "a/new", body: "new"},
		ent{name: "a/.wh..wh..opq"},
		ent{name: "a/sub/", typ: tar.TypeDir},
		ent{name: ".wh.r"},
		ent{name: "r/", typ: tar.TypeDir},
		ent{name: "r/upper", body: "upper"},
	)
}

// assertMerged checks the view of baseLayer+topLayer.
func assertMerged(t *testing.T, root string) {
	t.Helper()
	for rel, want := range map[string]bool{
		"d": false, "keep": true, "a/new": true, "a/old": false, "a/sub": true, "a/sub/deep": false,
		"r/lower": false, "r/upper": true,
	} {
		if exists(filepath.Join(root, rel)) != want {
			t.Errorf("%s exists=%v, want %v", rel, !want, want)
		}
	}
}

func TestApplyWhiteoutsByDeleting(t *testing.T) {
	dst, _ := sandbox(t)
	if err := apply(t, dst, baseLayer(t), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, dst, topLayer(t), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	assertMerged(t, dst)
}

func TestApplyWhiteoutsOverlayForm(t *testing.T) {
	lower, _ := sandbox(t)
	upper, _ := sandbox(t)
	if err := apply(t, lower, baseLayer(t), ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, upper, topLayer(t), ApplyOptions{Overlay: true}); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "d"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("d is not a whiteout device: %v", err)
	}
	for _, dir := range []string{"a", "r"} {
		buf := make([]byte, 4)
		n, err := unix.Lgetxattr(filepath.Join(upper, dir), overlayOpaque, buf)
		if err != nil || string(buf[:n]) != "y" {
			t.Fatalf("%s not opaque: %q %v", dir, buf[:n], err)
		}
	}

	// Mount it for real: overlayfs must show the same tree the deleting mode builds.
	work, _ := sandbox(t)
	merged, _ := sandbox(t)
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Skipf("overlay not available: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	assertMerged(t, merged)
}
