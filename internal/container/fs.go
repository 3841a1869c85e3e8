package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/berth-dev/berth/internal/runtime/userns"
	"github.com/docker/docker/api/types/mount"
	"golang.org/x/sys/unix"
)

// LayerDirs says where a container's writable layer lives on disk.
type LayerDirs struct {
	// Upper is the overlay upper directory, or (Overlay false) the container's whole tree.
	Upper string
	// Lowers are the image's layer directories, top-most first; set only with Overlay.
	Lowers []string
	// Overlay says Upper holds overlayfs whiteouts and is seen through Lowers.
	Overlay bool
	// Parent is the image's whole tree when Overlay is false ("" for an image without layers), the
	// baseline a copied tree is compared against.
	Parent string
	// Shifted is set when the files are owned by the remapped ids on disk (user namespaces without
	// idmapped mounts): what is read from them into a tar is shifted back, what is written shifted.
	Shifted *userns.Remap
}

// LayerLocator is implemented by a RootfsManager that can say where a container's layer lives. diff and
// commit need it, and it lets a stopped container be read without mounting its layer read-write.
type LayerLocator interface {
	LayerDirs(ctx context.Context, id string) (LayerDirs, error)
}

func (s *Service) layerDirs(ctx context.Context, id string) (LayerDirs, error) {
	ll, ok := s.cfg.Rootfs.(LayerLocator)
	if !ok {
		return LayerDirs{}, errdefs.NotImplemented(errors.New("the snapshotter cannot show a container's writable layer"))
	}
	return ll.LayerDirs(ctx, id)
}

// rootView is an open directory fd of a container's root filesystem. The fd pins the mount it came from,
// so a running container that exits meanwhile (its rootfs is then unmounted lazily) does not pull the
// tree from under a copy in progress.
type rootView struct {
	fd  int
	id  string
	rec record
	// done undoes what openRoot set up: a temporary mount, the container's lock.
	done []func()
	// mount is set when the view is a bind or volume of the container rather than its root, and
	// prefix is then where it is mounted in the container.
	mount  *mountPoint
	prefix string
	// remap is set when the view shows the container's files with their host ids (a running remapped
	// container's live root, or a shifted layer): owners written are mapped to the host's ids, and with
	// idmapped mounts the writes are made as the container's root (userns.Remap.AsRoot).
	remap *userns.Remap
	// shifted is set when the view's files are owned by host ids that reads must map back.
	shifted *userns.Remap
}

func (v *rootView) close() {
	unix.Close(v.fd)
	for i := len(v.done) - 1; i >= 0; i-- {
		v.done[i]()
	}
}

// procPath names the root (and, with rel, something below it, not following rel's last component if it
// is a symlink) through the open fd.
func (v *rootView) procPath(rel string) string {
	p := "/proc/self/fd/" + strconv.Itoa(v.fd)
	if rel != "" && rel != "." {
		p += "/" + rel
	}
	return p
}

// openRoot gives access to the container's root filesystem as the container sees it (without the
// mounts made inside the container: volumes, /proc, /etc/hosts). A running container's mounted rootfs
// is used as is. A stopped container's is mounted for the operation: read-only views are an overlay of
// its layer over the image's (nothing is locked, a concurrent start is harmless); writes mount the
// writable layer itself, holding the container's lock until close so that a start cannot mount it a
// second time meanwhile.
//
// Temporary mounts stay attached until close: openat2's RESOLVE_IN_ROOT fails with EAGAIN, every time,
// when a symlink leads ".." up to the root of a detached mount.
func (s *Service) openRoot(ctx context.Context, ref string, write bool) (*rootView, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gone || c.rec.State.Status == "removing" || c.rec.State.Status == "dead" {
		c.mu.Unlock()
		return nil, errdefs.Conflict(fmt.Errorf("container %s is marked for removal", c.rec.ID))
	}
	v := &rootView{fd: -1, id: c.rec.ID, rec: c.rec}
	// A remapped container's mounted rootfs shows its files with their host owners and takes no writes
	// from the host's root (see RemappedRootfs): reads go through a view of its layers instead, and
	// writes are made as the container's root.
	rm := s.remap(&c.rec)
	if c.running() && (rm == nil || write) {
		if write {
			v.remap = rm
		}
		// A shifted layer's live root shows host ids to reads too.
		if rm != nil && !rm.IDMapped {
			v.shifted = rm
		}
		v.fd, err = unix.Open(s.rootfsDir(v.id), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		c.mu.Unlock()
		if err != nil {
			return nil, errdefs.System(fmt.Errorf("open the container's root filesystem: %w", err))
		}
		return v, nil
	}
	mount := func(target string) error { return s.cfg.Rootfs.Mount(ctx, v.id, target) }
	dirs, derr := s.layerDirs(ctx, v.id)
	if derr == nil && dirs.Shifted != nil {
		// The image's layers must be seen through their chowned copies, like the container's own.
		v.shifted, v.remap = dirs.Shifted, dirs.Shifted
		if rr, ok := s.cfg.Rootfs.(RemappedRootfs); ok {
			mount = func(target string) error { return rr.MountRemapped(ctx, v.id, target, dirs.Shifted) }
		}
	}
	if derr == nil && !write {
		c.mu.Unlock()
		if !dirs.Overlay || len(dirs.Lowers) == 0 {
			// The layer is the whole tree: nothing to mount.
			if v.fd, err = unix.Open(dirs.Upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
				return nil, errdefs.System(err)
			}
			return v, nil
		}
		mount = func(target string) error { return mountReadOnlyView(target, dirs) }
	} else {
		v.done = append(v.done, c.mu.Unlock) // held until close: see above
	}
	tmp, err := os.MkdirTemp(s.cfg.ExecRoot, "fsop-")
	if err != nil {
		v.close()
		return nil, errdefs.System(err)
	}
	v.done = append(v.done, func() { os.Remove(tmp) })
	if err := mount(tmp); err != nil {
		v.close()
		return nil, errdefs.System(fmt.Errorf("mounting the container's root filesystem: %w", err))
	}
	v.done = append(v.done, func() { s.cfg.Rootfs.Unmount(tmp) })
	if v.fd, err = unix.Open(tmp, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		v.close()
		return nil, errdefs.System(err)
	}
	return v, nil
}

// mountReadOnlyView mounts a read-only overlay of a stopped container's layer stack at target. The
// upper directory becomes the top lower layer: overlayfs reads whiteouts and opaque directories in
// lower layers too, and a read-only overlay needs no work directory, so it never conflicts with the
// container's own read-write mount if the container starts meanwhile.
func mountReadOnlyView(target string, d LayerDirs) error {
	opts := "ro,index=off,lowerdir=" + strings.Join(append([]string{d.Upper}, d.Lowers...), ":")
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, opts); err != nil {
		return fmt.Errorf("mount a read-only view of the container: %w", err)
	}
	return nil
}

// resolved is a path inside a container's root: the directory holding it (an O_PATH fd reached without
// leaving the root) and its last component, which is not followed.
type resolved struct {
	dirfd int
	base  string // "." when the path is the directory itself
	rel   string // the directory's path relative to the root, resolved ("" for the root)
}

func (r resolved) close() { unix.Close(r.dirfd) }

// resolve finds p inside the root the way Docker's archive endpoints do: every component but the last
// is followed as a symlink would be inside the container (absolute targets and ".." stay in the root);
// the last is followed too when p ends in "/" or "/.".
func (v *rootView) resolve(p string) (resolved, error) {
	clean := path.Clean("/" + p)
	followLast := clean == "/" || strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	dir, base := path.Split(clean)
	if followLast {
		dir, base = clean, "."
	}
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := openat2(v.fd, path.Join(".", dir), how)
	if err != nil {
		return resolved{}, err
	}
	// The directory's path as a string, so that names given to archive.Apply (which resolves them
	// inside the root again) land where the user meant, and so stat can report link targets. Resolved
	// separately from fd, it can only disagree with it if the container changes the path meanwhile, and
	// both stay inside the root either way.
	root := v.procPath("")
	full, err := spec.JoinInRoot(root, dir)
	if err != nil {
		unix.Close(fd)
		return resolved{}, err
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(full, root), "/")
	return resolved{dirfd: fd, base: base, rel: rel}, nil
}

// openat2 retries EAGAIN: with RESOLVE_IN_ROOT, the kernel gives up on a path with ".." whenever a
// rename or mount anywhere on the host raced with the lookup.
func openat2(dirfd int, p string, how *unix.OpenHow) (int, error) {
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, p, how)
		if !errors.Is(err, unix.EAGAIN) || i == 1000 {
			return fd, err
		}
	}
}

// fileNotFound is Docker's error for a path that does not exist in a container.
func fileNotFound(p, ref string) error {
	return errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", p, ref))
}

// pathError classifies a resolution error: a missing component is Docker's 404, anything else is the
// caller's path that cannot be used (a file where a directory is needed, a loop).
func pathError(err error, p, ref string) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fileNotFound(p, ref)
	case errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return errdefs.InvalidParameter(fmt.Errorf("%s: %w", p, err))
	}
	return errdefs.System(err)
}

// openView opens what p lies on for cp: the bind or volume mounted at p or above it, as the container
// sees it, or else the container's root (openRoot). It returns p relative to the view, keeping a
// trailing "/" or "/.". The mount is found from p as written: a symlink in the container's tree that
// leads into a volume is followed within the root filesystem, not into the volume.
func (s *Service) openView(ctx context.Context, ref, p string, write bool) (*rootView, string, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, "", err
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	mp, rest, ok := mountAt(rec.MountPoints, p)
	if !ok {
		v, err := s.openRoot(ctx, ref, write)
		return v, p, err
	}
	src := mp.Source
	if mp.Type == mount.TypeVolume && s.cfg.Volumes != nil {
		src = s.cfg.Volumes.Path(mp.Name)
	}
	fd, err := unix.Open(src, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", pathError(err, p, ref)
	}
	v := &rootView{fd: fd, id: rec.ID, rec: rec, mount: &mp, prefix: mp.Destination}
	if rm := s.remap(&rec); rm != nil && !rm.IDMapped && mp.Type == mount.TypeVolume {
		// Without idmapped mounts a remapped container's volumes hold host ids on disk.
		v.remap, v.shifted = rm, rm
	}
	return v, rest, nil
}

// mountAt finds the bind or volume whose destination is p or its longest parent.
func mountAt(mps []mountPoint, p string) (mountPoint, string, bool) {
	clean := path.Clean("/" + p)
	var best mountPoint
	found := false
	for _, mp := range mps {
		if mp.Type != mount.TypeBind && mp.Type != mount.TypeVolume {
			continue
		}
		d := mp.Destination
		if (clean == d || strings.HasPrefix(clean, d+"/")) && (!found || len(d) > len(best.Destination)) {
			best, found = mp, true
		}
	}
	if !found {
		return mountPoint{}, "", false
	}
	rest := "/" + strings.TrimPrefix(strings.TrimPrefix(clean, best.Destination), "/")
	switch {
	case strings.HasSuffix(p, "/.") || p == ".":
		rest = strings.TrimSuffix(rest, "/") + "/."
	case strings.HasSuffix(p, "/"):
		rest = strings.TrimSuffix(rest, "/") + "/"
	}
	return best, rest, true
}
