package userns

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestCopyShifted: a layer's chowned copy keeps everything but the owners, which move into the range.
func TestCopyShifted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown, mknod, trusted xattrs)")
	}
	r := &Remap{UIDs: []specs.LinuxIDMapping{{HostID: 100000, Size: 65536}}, GIDs: []specs.LinuxIDMapping{{HostID: 200000, Size: 65536}}}
	src := filepath.Join(t.TempDir(), "fs")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "opaque"), 0o755))
	must(unix.Lsetxattr(filepath.Join(src, "opaque"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.WriteFile(filepath.Join(src, "suid"), []byte("x"), 0o755))
	must(os.Chown(filepath.Join(src, "suid"), 5, 6))
	must(unix.Chmod(filepath.Join(src, "suid"), 0o4755))
	must(os.Link(filepath.Join(src, "suid"), filepath.Join(src, "hardlink")))
	must(os.Symlink("suid", filepath.Join(src, "link")))
	must(unix.Mknod(filepath.Join(src, "whiteout"), unix.S_IFCHR, 0))
	must(os.WriteFile(filepath.Join(src, "ping"), []byte("x"), 0o755))
	// A v2 file capability set: cap_net_raw+ep.
	fcaps := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}
	must(unix.Lsetxattr(filepath.Join(src, "ping"), "security.capability", fcaps, 0))
	must(os.WriteFile(filepath.Join(src, "big-id"), nil, 0o644))
	must(os.Chown(filepath.Join(src, "big-id"), 70000, 70000)) // outside the container's range

	dst := src + "-" + r.Tag()
	must(r.CopyShifted(src, dst))
	stat := func(name string) *syscall.Stat_t {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t)
	}
	if st := stat("suid"); st.Uid != 100005 || st.Gid != 200006 || st.Mode&0o7777 != 0o4755 {
		t.Errorf("suid: %d:%d %o", st.Uid, st.Gid, st.Mode&0o7777)
	}
	if stat("hardlink").Ino != stat("suid").Ino {
		t.Error("hard link not kept")
	}
	if st := stat("link"); st.Mode&unix.S_IFMT != unix.S_IFLNK || st.Uid != 100000 {
		t.Errorf("symlink: mode %o owner %d", st.Mode, st.Uid)
	}
	if st := stat("whiteout"); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout: mode %o rdev %d", st.Mode, st.Rdev)
	}
	if st := stat("big-id"); st.Uid != 100000+65534 {
		t.Errorf("an owner outside the range became %d, want the container's nobody", st.Uid)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dst, "opaque"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", buf[:n], err)
	}
	if _, err := os.Stat(dst + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary copy left: %v", err)
	}

	// ShiftTree shifts in place, and a second run changes nothing.
	must(r.ShiftTree(src))
	must(r.ShiftTree(src))
	fi, _ := os.Lstat(filepath.Join(src, "suid"))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 100005 || st.Mode&0o7777 != 0o4755 {
		t.Errorf("shifted in place: %d %o", st.Uid, st.Mode&0o7777)
	}
	for _, root := range []string{dst, src} {
		buf := make([]byte, 64)
		if n, err := unix.Lgetxattr(filepath.Join(root, "ping"), "security.capability", buf); err != nil || n != len(fcaps) {
			t.Errorf("file capabilities in %s after the shift: %d bytes, %v", root, n, err)
		}
	}
	if u, ok := r.ContainerUID(100005); !ok || u != 5 {
		t.Errorf("ContainerUID(100005) = %d, %v", u, ok)
	}
}
