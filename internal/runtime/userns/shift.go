package userns

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Without idmapped mounts (kernels before 5.19, or a data root on a filesystem that cannot take them)
// a remapped container's files must really be owned by the remapped ids on disk: its image layers are
// used through chowned copies (made once per layer, kept next to the layer), and its own writable layer
// is shifted in place the first time it runs remapped. The engine shifts ids back wherever it reads
// that layer into a tar (commit, export, cp) and forward wherever it writes into it.

// ContainerUID maps a host uid back to the container's, and says whether it is in the range at all.
func (r *Remap) ContainerUID(id int) (int, bool) { return toContainer(r.UIDs, id) }

// ContainerGID maps a host gid back to the container's.
func (r *Remap) ContainerGID(id int) (int, bool) { return toContainer(r.GIDs, id) }

func toContainer(m []specs.LinuxIDMapping, id int) (int, bool) {
	for _, e := range m {
		if id >= int(e.HostID) && id < int(e.HostID+e.Size) {
			return int(e.ContainerID) + id - int(e.HostID), true
		}
	}
	return -1, false
}

// Tag names a remap in file names: "<uid>.<gid>" of the container's root, as Docker names its remapped
// roots.
func (r *Remap) Tag() string { return fmt.Sprintf("%d.%d", r.RootUID(), r.RootGID()) }

// toHostIDs shifts an owner into the range; ids outside the container's range become the container's
// nobody (its 65534), so that nothing is left owned by a host id.
func (r *Remap) toHostIDs(uid, gid int) (int, int) {
	u, ok := r.HostUID(uid)
	if !ok {
		u, _ = r.HostUID(65534)
	}
	g, ok := r.HostGID(gid)
	if !ok {
		g, _ = r.HostGID(65534)
	}
	return u, g
}

// lchownKeepMode changes an owner and puts back the setuid and setgid bits chown clears.
func lchownKeepMode(p string, fi fs.FileInfo, uid, gid int) error {
	if err := os.Lchown(p, uid, gid); err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
		st := fi.Sys().(*syscall.Stat_t)
		return unix.Chmod(p, st.Mode&0o7777)
	}
	return nil
}

// ShiftTree moves every owner under dir (dir included) into the remap's range.
func (r *Remap) ShiftTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if _, inRange := r.ContainerUID(int(st.Uid)); inRange {
			return nil // already shifted (a shift interrupted halfway is resumed)
		}
		u, g := r.toHostIDs(int(st.Uid), int(st.Gid))
		return lchownKeepMode(p, fi, u, g)
	})
}

// CopyShifted copies the layer tree src to dst (which must not exist) with every owner moved into the
// remap's range. Modes, times, extended attributes (overlayfs' opaque and whiteout markers among them),
// hard links, device nodes and whiteouts are kept. The copy is made beside dst and renamed into place.
func (r *Remap) CopyShifted(src, dst string) error {
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	links := map[uint64]string{}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(tmp, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := st.Mode & 0o7777
		if fi.Mode().IsRegular() && st.Nlink > 1 {
			if first, ok := links[st.Ino]; ok {
				return os.Link(first, to)
			}
			links[st.Ino] = to
		}
		switch {
		case fi.IsDir():
			err = unix.Mkdir(to, mode)
		case fi.Mode().IsRegular():
			err = copyFile(p, to, mode)
		case fi.Mode()&fs.ModeSymlink != 0:
			var target string
			if target, err = os.Readlink(p); err == nil {
				err = os.Symlink(target, to)
			}
		default: // devices, fifos, sockets, overlayfs whiteouts (0:0 character devices)
			err = unix.Mknod(to, st.Mode, int(st.Rdev))
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", p, err)
		}
		// chown drops file capabilities, so the attributes come after it.
		u, g := r.toHostIDs(int(st.Uid), int(st.Gid))
		if err := os.Lchown(to, u, g); err != nil {
			return err
		}
		if err := copyXattrs(p, to); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if err := unix.Chmod(to, mode); err != nil {
				return err
			}
		}
		ts := []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}
		return unix.UtimesNanoAt(unix.AT_FDCWD, to, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	// Directory times changed as their entries were made: set them again, deepest first.
	_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			if fi, err := d.Info(); err == nil {
				st := fi.Sys().(*syscall.Stat_t)
				rel, _ := filepath.Rel(src, p)
				_ = unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(tmp, rel), []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}, unix.AT_SYMLINK_NOFOLLOW)
			}
		}
		return nil
	})
	return os.Rename(tmp, dst)
}

func copyFile(from, to string, mode uint32) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(mode&0o777))
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func copyXattrs(from, to string) error {
	size, err := unix.Llistxattr(from, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(from, buf)
	if err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vsize, err := unix.Lgetxattr(from, name, nil)
		if err != nil {
			return err
		}
		val := make([]byte, vsize)
		if _, err := unix.Lgetxattr(from, name, val); err != nil {
			return err
		}
		if err := unix.Lsetxattr(to, name, val, 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("copy xattr %s of %s: %w", name, from, err)
		}
	}
	return nil
}
