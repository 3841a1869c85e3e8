package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// OCI whiteout names.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
	overlayOpaque  = "trusted.overlay.opaque"
	xattrPAXPrefix = "SCHILY.xattr."
)

// ApplyOptions says how to treat whiteouts and device nodes.
type ApplyOptions struct {
	// Overlay writes whiteouts in overlayfs form (a 0:0 char device per deleted name, the opaque xattr
	// on opaque directories) because dst is a fresh overlay upper directory. When false, whiteouts are
	// applied to dst by deleting, as a copying snapshotter needs.
	Overlay bool
	// NoDevices skips character and block device entries (unprivileged or untrusted extraction).
	NoDevices bool
}

// Apply extracts the layer tar r into dst and returns the number of bytes read from r. It reads r to
// EOF, so a caller hashing r sees every byte, tar padding included.
func Apply(ctx context.Context, dst string, r io.Reader, opts ApplyOptions) (int64, error) {
	root, err := unix.Open(dst, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dst, err)
	}
	defer unix.Close(root)
	cr := &countingReader{r: r}
	a := &applier{ctx: ctx, root: root, opts: opts, touched: map[string]bool{}}
	if err := a.run(tar.NewReader(cr)); err != nil {
		return cr.n, err
	}
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return cr.n, err
	}
	return cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type dirTime struct {
	rel   string
	mtime time.Time
}

type applier struct {
	ctx     context.Context
	root    int
	opts    ApplyOptions
	touched map[string]bool // paths this layer wrote, with their ancestors (for opaque pruning)
	opaque  []string        // opaque directories to prune when not in overlay mode
	dirs    []dirTime
}

// cleanName maps a tar name to a path relative to the root; ".." cannot climb above the root because
// the name is cleaned as if absolute. "" means the root itself.
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (a *applier) run(tr *tar.Reader) error {
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read layer: %w", err)
		}
		rel := cleanName(hdr.Name)
		if rel == "" {
			continue // the root's own metadata belongs to the snapshot, not the layer
		}
		dir, base := path.Split(rel)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == opaqueMarker:
			err = a.opaqueDir(dir)
		case strings.HasPrefix(base, whiteoutPrefix):
			err = a.whiteout(dir, base[len(whiteoutPrefix):])
		default:
			err = a.entry(tr, hdr, rel, dir, base)
		}
		if err != nil {
			return fmt.Errorf("apply %s: %w", hdr.Name, err)
		}
	}
	if !a.opts.Overlay {
		for _, d := range a.opaque {
			if err := a.prune(d); err != nil {
				return fmt.Errorf("opaque %s: %w", d, err)
			}
		}
	}
	// Directory mtimes last: creating children changed them.
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		pdir, base := path.Split(d.rel)
		fd, err := a.openDir(strings.TrimSuffix(pdir, "/"), false)
		if err != nil {
			continue
		}
		setTimes(fd, base, d.mtime)
		unix.Close(fd)
	}
	return nil
}

func (a *applier) touch(rel string) {
	for rel != "" && rel != "." && !a.touched[rel] {
		a.touched[rel] = true
		rel = path.Dir(rel)
	}
}

// openDir resolves rel (relative to the root) to an O_PATH directory fd without ever leaving the root:
// symlinks are resolved as if the root were "/". With create, missing directories are made (0755).
func (a *applier) openDir(rel string, create bool) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(a.root, rel, how)
	if err == nil || !create || !errors.Is(err, unix.ENOENT) || rel == "." {
		return fd, err
	}
	pdir, base := path.Split(rel)
	pfd, err := a.openDir(strings.TrimSuffix(pdir, "/"), true)
	if err != nil {
		return -1, err
	}
	err = unix.Mkdirat(pfd, base, 0o755)
	unix.Close(pfd)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	a.touch(rel)
	return unix.Openat2(a.root, rel, how)
}

// procPath names base inside the directory fd without resolving anything but base itself.
func procPath(dirfd int, base string) string {
	p := "/proc/self/fd/" + strconv.Itoa(dirfd)
	if base != "" {
		p += "/" + base
	}
	return p
}

func isWhiteoutDev(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// removeAt deletes base (a whole tree if a directory) from the directory fd; absent is fine.
func removeAt(dirfd int, base string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EPERM) {
		// os.RemoveAll walks with openat/O_NOFOLLOW below the resolved parent, so it cannot escape.
		return os.RemoveAll(procPath(dirfd, base))
	}
	return err
}

func (a *applier) whiteout(dir, name string) error {
	if name == "" || name == "." || name == ".." {
		return nil
	}
	if a.opts.Overlay {
		pfd, err := a.openDir(dir, true)
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		if err := removeAt(pfd, name); err != nil {
			return err
		}
		return unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
	}
	pfd, err := a.openDir(dir, false)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		return err
	}
	defer unix.Close(pfd)
	return removeAt(pfd, name)
}

func (a *applier) opaqueDir(dir string) error {
	fd, err := a.openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	a.touch(dir)
	if a.opts.Overlay {
		// Follow the magic link to the directory itself: it was resolved inside the root above.
		return unix.Setxattr(procPath(fd, ""), overlayOpaque, []byte("y"), 0)
	}
	a.opaque = append(a.opaque, dir)
	return nil
}

// prune removes everything under dir that this layer did not write: the lower layers' view of an
// opaque directory.
func (a *applier) prune(dir string) error {
	fd, err := a.openDir(dir, false)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	dfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(dfd), dir)
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		child := path.Join(dir, n)
		if !a.touched[child] {
			if err := removeAt(fd, n); err != nil {
				return err
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := a.prune(child); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *applier) entry(tr *tar.Reader, hdr *tar.Header, rel, dir, base string) error {
	pfd, err := a.openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)

	isDir := hdr.Typeflag == tar.TypeDir
	keep, markOpaque := false, false
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		switch {
		case isDir && st.Mode&unix.S_IFMT == unix.S_IFDIR:
			keep = true
		default:
			// A directory replacing this layer's own whiteout must hide the lower directory.
			markOpaque = isDir && a.opts.Overlay && isWhiteoutDev(&st)
			if err := removeAt(pfd, base); err != nil {
				return err
			}
		}
	}
	a.touch(rel)

	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !keep {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return err
			}
		}
		if markOpaque {
			if err := unix.Lsetxattr(procPath(pfd, base), overlayOpaque, []byte("y"), 0); err != nil {
				return err
			}
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), rel)
		_, err = io.Copy(f, &ctxReader{ctx: a.ctx, r: tr})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		// The target is stored as is; nothing in Apply ever follows it.
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return err
		}
	case tar.TypeLink:
		target := cleanName(hdr.Linkname)
		tdir, tbase := path.Split(target)
		tfd, err := a.openDir(strings.TrimSuffix(tdir, "/"), false)
		if err != nil {
			return fmt.Errorf("hardlink target %s: %w", hdr.Linkname, err)
		}
		// No AT_SYMLINK_FOLLOW: a symlink target is linked itself, never what it points at.
		err = unix.Linkat(tfd, tbase, pfd, base, 0)
		unix.Close(tfd)
		if err != nil {
			return fmt.Errorf("hardlink target %s: %w", hdr.Linkname, err)
		}
		return nil // shares the target's inode and metadata
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := uint32(unix.S_IFIFO)
		if hdr.Typeflag == tar.TypeChar {
			kind = unix.S_IFCHR
		} else if hdr.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
		if kind != unix.S_IFIFO && a.opts.NoDevices {
			return nil
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, kind|0o600, int(dev)); err != nil {
			return err
		}
	default:
		return nil // pax globals, GNU long-name artefacts already folded in by archive/tar, etc.
	}

	// Owner before mode: chown clears setuid/setgid bits.
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// base was created by us above and is not a symlink, so following is harmless.
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return err
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, xattrPAXPrefix)
		if !ok || strings.HasPrefix(name, "trusted.overlay.") {
			// A layer must never steer overlayfs (redirects, opaque, metacopy) directly.
			continue
		}
		if err := unix.Lsetxattr(procPath(pfd, base), name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || (errors.Is(err, unix.EPERM) && hdr.Typeflag == tar.TypeSymlink) {
				continue
			}
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	if isDir {
		a.dirs = append(a.dirs, dirTime{rel: rel, mtime: hdr.ModTime})
		return nil
	}
	return setTimes(pfd, base, hdr.ModTime)
}

func setTimes(dirfd int, base string, mtime time.Time) error {
	if mtime.IsZero() {
		return nil
	}
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return unix.UtimesNanoAt(dirfd, base, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// ContextReader returns r, made to fail with ctx's error once ctx ends, so a long copy stops.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx: ctx, r: r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
