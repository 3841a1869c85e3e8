// Package fsutil copies layer trees and files the way a container engine must: owners, modes, extended
// attributes, links and device nodes kept, nothing followed.
package fsutil

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// CopyTree copies src into the existing empty directory dst, keeping what a layer holds: owners,
// modes (setuid included), xattrs, hardlinks, symlinks, device nodes, fifos and mtimes. Nothing is
// followed: dst's directories are all created here, so no path can leave dst. owner, when not nil,
// maps each entry's owner to the copy's (user namespaces' chowned layers).
func CopyTree(ctx context.Context, src, dst string, owner func(uid, gid int) (int, int)) error {
	type dirTime struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTime
	links := map[[2]uint64]string{}
	err := filepath.WalkDir(src, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode()
		switch {
		case mode.IsDir():
			if rel != "." {
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, dirTime{target, fi.ModTime()})
		case mode.IsRegular():
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok && st.Nlink > 1 {
				return os.Link(first, target)
			}
			links[key] = target
			if err := CopyFile(p, target); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0:
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		default:
			return nil // sockets are not copied
		}
		uid, gid := int(st.Uid), int(st.Gid)
		if owner != nil {
			uid, gid = owner(uid, gid)
		}
		// Owner first: chown drops file capabilities and setuid bits, which the mode and xattrs put back.
		if err := os.Lchown(target, uid, gid); err != nil {
			return err
		}
		if mode&fs.ModeSymlink == 0 {
			if err := unix.Chmod(target, st.Mode&0o7777); err != nil {
				return err
			}
		}
		if err := CopyXattrs(p, target); err != nil {
			return err
		}
		if !mode.IsDir() {
			ts := unix.NsecToTimespec(fi.ModTime().UnixNano())
			return unix.UtimesNanoAt(unix.AT_FDCWD, target, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		ts := unix.NsecToTimespec(dirs[i].mtime.UnixNano())
		unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// CopyFile copies a regular file's content to dst, which it creates (mode 0600; the caller sets the
// rest). Neither end is followed if it is a symlink.
func CopyFile(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil { // copy_file_range when the kernel can
		out.Close()
		return err
	}
	return out.Close()
}

// CopyXattrs copies src's extended attributes to dst; a filesystem without them is not an error.
func CopyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return err
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(src, buf); err != nil {
		return err
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		n, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, n)
		if n, err = unix.Lgetxattr(src, name, val); err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val[:n], 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return err
		}
	}
	return nil
}
