package archive

import (
	"archive/tar"
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

// WriteTar writes the tree under root as an uncompressed tar to w, deterministically (see the package
// doc). Hardlinked files become tar hardlinks; xattrs are kept except overlayfs' own.
func WriteTar(ctx context.Context, w io.Writer, root string) error {
	return writeTree(ctx, w, root, false)
}

// Diff writes an overlay upper directory as an OCI layer tar: 0:0 character devices become ".wh.<name>"
// files and opaque directories get a ".wh..wh..opq" entry. The result applies on top of the lower
// layers to give what the overlay mount showed.
func Diff(ctx context.Context, w io.Writer, upper string) error {
	return writeTree(ctx, w, upper, true)
}

type inode struct{ dev, ino uint64 }

func writeTree(ctx context.Context, w io.Writer, root string, overlay bool) error {
	tw := tar.NewWriter(w)
	links := map[inode]string{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		mtime := fi.ModTime().Truncate(time.Second)

		if overlay && st != nil && st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0 {
			dir, base := filepath.Split(rel)
			return tw.WriteHeader(&tar.Header{Name: dir + whiteoutPrefix + base, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: mtime, Format: tar.FormatPAX})
		}
		if fi.Mode()&fs.ModeSocket != 0 {
			return nil // sockets cannot be archived and are meaningless in a layer
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = mtime, time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if st != nil {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
			if fi.Mode().IsRegular() && st.Nlink > 1 {
				key := inode{st.Dev, st.Ino}
				if first, ok := links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					links[key] = rel
				}
			}
		}
		opaque := false
		xattrs, err := listXattrs(p)
		if err != nil {
			return err
		}
		for k, v := range xattrs {
			if strings.HasPrefix(k, "trusted.overlay.") {
				opaque = opaque || (k == overlayOpaque && v == "y")
				continue
			}
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords[xattrPAXPrefix+k] = v
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, &ctxReader{ctx: ctx, r: f})
			f.Close()
			if err != nil {
				return err
			}
		}
		if overlay && opaque && fi.IsDir() {
			return tw.WriteHeader(&tar.Header{Name: rel + "/" + opaqueMarker, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: mtime, Format: tar.FormatPAX})
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// listXattrs returns p's extended attributes without following a symlink at p.
func listXattrs(p string) (map[string]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return nil, err
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		vsize, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		vsize, err = unix.Lgetxattr(p, name, val)
		if err != nil {
			continue
		}
		out[name] = string(val[:vsize])
	}
	return out, nil
}
