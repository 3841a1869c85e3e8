package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/fsutil"
	"golang.org/x/sys/unix"
)

// CopyUp fills the empty directory dst with the content of the directory src, as Docker does the first
// time a volume is mounted where the image has files: regular files, directories, symlinks (as links,
// never followed), hard links, device nodes and fifos, with their ownership, modes, times and extended
// attributes. The directory dst itself takes src's ownership and mode. A src that does not exist or is
// not a directory copies nothing.
//
// src must already be resolved inside the container's root (spec.JoinInRoot) and nothing may be running
// in that root: the walk never follows a symlink, so it cannot leave src.
func CopyUp(src, dst string) error {
	fi, err := os.Lstat(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return nil
	}
	links := map[uint64]string{} // inode -> first copy, for hard links
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := statOf(info)
		if rel != "." && st != nil && st.Nlink > 1 && !info.IsDir() {
			if first, ok := links[st.Ino]; ok {
				return os.Link(first, target)
			}
			links[st.Ino] = target
		}
		if err := copyEntry(p, target, info, rel == "."); err != nil {
			return fmt.Errorf("copying %s to the volume: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Directory times last: creating entries inside a directory changes its mtime.
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		return setTimes(filepath.Join(dst, rel), info)
	})
}

func copyEntry(src, dst string, fi fs.FileInfo, isRoot bool) error {
	st, ok := statOf(fi)
	if !ok {
		return errors.New("no stat information")
	}
	mode := fi.Mode()
	switch {
	case mode.IsDir():
		if !isRoot {
			if err := os.Mkdir(dst, 0o700); err != nil {
				return err
			}
		}
	case mode.IsRegular():
		if err := fsutil.CopyFile(src, dst); err != nil {
			return err
		}
	case mode&fs.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(link, dst); err != nil {
			return err
		}
		if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		_ = fsutil.CopyXattrs(src, dst) // best effort, as below
		return setTimes(dst, fi)
	case mode&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	default:
		return nil
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	// After chown, which clears setuid and setgid bits.
	if err := unix.Chmod(dst, st.Mode&07777); err != nil {
		return err
	}
	// What extended attributes it can (file capabilities, user attributes): a filesystem that refuses one
	// is not a reason to fail the container's start.
	_ = fsutil.CopyXattrs(src, dst)
	if !mode.IsDir() {
		return setTimes(dst, fi)
	}
	return nil
}

func setTimes(p string, fi fs.FileInfo) error {
	st, ok := statOf(fi)
	if !ok {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(st.Atim.Nano()), unix.NsecToTimespec(st.Mtim.Nano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}
