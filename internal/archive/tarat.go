package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WriteEntryAt writes the entry name of the directory dirfd to w as a tar, and when it is a directory
// everything below it, with tar names starting at as ("" leaves the entry itself out and names its
// children from the top, as `docker export` does).
//
// Unlike WriteTar it never resolves a path: every step is an openat relative to the directory before,
// with O_NOFOLLOW, so a tree that a running container can change while it is read (swapping a directory
// for a symlink to "/", say) can at worst make an entry fail or be skipped, never make the walk read a
// file outside the tree. Output is deterministic in the same way as WriteTar's.
func WriteEntryAt(ctx context.Context, w io.Writer, dirfd int, name, as string) error {
	tw := tar.NewWriter(w)
	wk := &fdWalker{ctx: ctx, tw: tw, links: map[inode]string{}}
	if err := wk.entry(dirfd, name, as); err != nil {
		return err
	}
	return tw.Close()
}

type fdWalker struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[inode]string
}

// entry writes base (in dirfd) as tarName and recurses into directories.
func (wk *fdWalker) entry(dirfd int, base, tarName string) error {
	if err := wk.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: tarName, Err: err}
	}
	hdr := &tar.Header{
		Name:    tarName,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()).Truncate(time.Second),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return wk.dir(dirfd, base, tarName, hdr)
	case unix.S_IFREG:
		return wk.file(dirfd, base, hdr, &st)
	case unix.S_IFLNK:
		target, err := readlinkat(dirfd, base)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
		if st.Mode&unix.S_IFMT == unix.S_IFCHR {
			hdr.Typeflag = tar.TypeChar
		} else if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	default:
		return nil // sockets cannot be archived
	}
	if tarName == "" {
		return nil
	}
	return wk.tw.WriteHeader(hdr)
}

func (wk *fdWalker) dir(dirfd int, base, tarName string, hdr *tar.Header) error {
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: tarName, Err: err}
	}
	d := os.NewFile(uintptr(fd), tarName)
	defer d.Close()
	if tarName != "" {
		hdr.Typeflag = tar.TypeDir
		hdr.Name = strings.TrimSuffix(tarName, "/") + "/"
		addXattrs(fd, hdr)
		if err := wk.tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, n := range names {
		child := n
		if tarName != "" {
			// Not path.Join: "." must stay a prefix ("./f") for clients that rename entries by it.
			child = strings.TrimSuffix(tarName, "/") + "/" + n
		}
		if err := wk.entry(fd, n, child); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // deleted while we walked
			}
			return err
		}
	}
	return nil
}

func (wk *fdWalker) file(dirfd int, base string, hdr *tar.Header, st *unix.Stat_t) error {
	if hdr.Name == "" {
		return nil
	}
	if st.Nlink > 1 {
		key := inode{st.Dev, st.Ino}
		if first, ok := wk.links[key]; ok {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return wk.tw.WriteHeader(hdr)
		}
		wk.links[key] = hdr.Name
	}
	// O_NONBLOCK: if the file was swapped for a FIFO since the stat, opening it must not hang.
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: hdr.Name, Err: err}
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return err
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != unix.S_IFREG {
		return &os.PathError{Op: "open", Path: hdr.Name, Err: unix.ENOENT} // replaced meanwhile
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, now.Size
	addXattrs(fd, hdr)
	if err := wk.tw.WriteHeader(hdr); err != nil {
		return err
	}
	// A file that grows while it is read is cut at the size in the header; one that shrinks is an error
	// rather than a corrupt archive.
	n, err := io.Copy(wk.tw, io.LimitReader(&ctxReader{ctx: wk.ctx, r: f}, now.Size))
	if err == nil && n != now.Size {
		err = fmt.Errorf("%s: file shrank while being archived", hdr.Name)
	}
	return err
}

func readlinkat(dirfd int, base string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, base, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// addXattrs records fd's extended attributes, except overlayfs' own, as PAX records.
func addXattrs(fd int, hdr *tar.Header) {
	size, err := unix.Flistxattr(fd, nil)
	if err != nil || size <= 0 {
		return
	}
	buf := make([]byte, size)
	size, err = unix.Flistxattr(fd, buf)
	if err != nil {
		return
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		vsize, err := unix.Fgetxattr(fd, name, nil)
		if err != nil || vsize < 0 {
			continue
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Fgetxattr(fd, name, val); err != nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[xattrPAXPrefix+name] = string(val[:vsize])
	}
}
