package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"
)

// ExtractOptions are the query options of PUT /containers/{id}/archive.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a non-directory or the reverse (the
	// docker CLI always asks for this).
	NoOverwriteDirNonDir bool
	// CopyUIDGID gives everything extracted the container user's uid and gid (`docker cp -a`).
	CopyUIDGID bool
}

// StatPath describes p inside the container's root filesystem, for HEAD /containers/{id}/archive. The
// last component is not followed; a symlink's LinkTarget is where it leads, resolved inside the container.
func (s *Service) StatPath(ctx context.Context, ref, p string) (container.PathStat, error) {
	v, vp, err := s.openView(ctx, ref, p, false)
	if err != nil {
		return container.PathStat{}, err
	}
	defer v.close()
	r, err := v.resolve(vp)
	if err != nil {
		return container.PathStat{}, pathError(err, p, ref)
	}
	defer r.close()
	return v.stat(r, p, ref)
}

func (v *rootView) stat(r resolved, p, ref string) (container.PathStat, error) {
	// Never the bare magic link: lstat would describe the link, not the directory.
	name := "/proc/self/fd/" + fmt.Sprint(r.dirfd) + "/" + r.base
	fi, err := os.Lstat(name)
	if err != nil {
		return container.PathStat{}, pathError(err, p, ref)
	}
	st := container.PathStat{Name: statName(p), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&os.ModeSymlink != 0 {
		root := v.procPath("")
		target, err := spec.JoinInRoot(root, path.Join("/", r.rel, r.base))
		if err != nil {
			return container.PathStat{}, pathError(err, p, ref)
		}
		st.LinkTarget = path.Join("/", v.prefix, strings.TrimPrefix(target, root))
	}
	return st, nil
}

// statName is the name Docker reports and archives a path under: its last element, "." for a path
// ending in "/." (copy the contents, not the directory).
func statName(p string) string {
	if strings.HasSuffix(p, "/.") || p == "." {
		return "."
	}
	return path.Base(path.Clean("/" + p))
}

// ArchivePath returns a tar of p (a directory with everything below it) for GET
// /containers/{id}/archive, with p's stat for the response header. Entries are named from p's last
// element, so the client can rename them. The caller must close the reader.
func (s *Service) ArchivePath(ctx context.Context, ref, p string) (io.ReadCloser, container.PathStat, error) {
	v, vp, err := s.openView(ctx, ref, p, false)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	r, err := v.resolve(vp)
	if err != nil {
		v.close()
		return nil, container.PathStat{}, pathError(err, p, ref)
	}
	st, err := v.stat(r, p, ref)
	if err != nil {
		r.close()
		v.close()
		return nil, st, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer v.close()
		defer r.close()
		pw.CloseWithError(archive.WriteEntryAt(ctx, pw, r.dirfd, r.base, statName(p)))
	}()
	s.event("archive-path", v.id, map[string]string{"path": p})
	return unshiftTar(pr, v.shifted), st, nil
}

// ExtractToDir extracts the tar src into the directory p of the container, for PUT
// /containers/{id}/archive. p and every name in the archive are resolved inside the container's root:
// symlinks in the container lead where they would inside it, never to the host.
func (s *Service) ExtractToDir(ctx context.Context, ref, p string, opts ExtractOptions, src io.Reader) error {
	v, vp, err := s.openView(ctx, ref, p, true)
	if err != nil {
		return err
	}
	defer v.close()
	if v.mount != nil && !v.mount.RW {
		return errdefs.InvalidParameter(errors.New("mounted volume is marked read-only"))
	}
	if v.mount == nil && v.rec.HostConfig != nil && v.rec.HostConfig.ReadonlyRootfs {
		return errdefs.InvalidParameter(errors.New("container rootfs is marked read-only"))
	}
	r, err := v.resolve(strings.TrimSuffix(vp, "/") + "/")
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return errdefs.InvalidParameter(errors.New("extraction point is not a directory"))
		}
		return pathError(err, p, ref)
	}
	dest := r.rel
	r.close()

	chown := false
	var uid, gid uint32
	if opts.CopyUIDGID && v.rec.Config != nil && v.rec.Config.User != "" {
		root := v
		if v.mount != nil {
			// The user is looked up in the container's /etc, not in the volume.
			if root, err = s.openRoot(ctx, ref, false); err != nil {
				return err
			}
			defer root.close()
		}
		uid, gid, _, _, err = spec.ResolveUser(root.procPath(""), v.rec.Config.User, nil)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		chown = true
	}

	// Names are moved under dest and checked here; archive.Apply then writes them confined to the root.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := v.rebase(src, pw, dest, opts.NoOverwriteDirNonDir, chown, int(uid), int(gid))
		pw.CloseWithError(err)
		done <- err
	}()
	apply := func() error {
		_, err := archive.Apply(ctx, v.procPath(""), pr, archive.ApplyOptions{})
		return err
	}
	var applyErr error
	if v.remap != nil && v.remap.IDMapped && v.mount == nil {
		applyErr = v.remap.AsRoot(apply)
	} else {
		applyErr = apply()
	}
	pr.CloseWithError(errExtractEnded)
	if err := <-done; err != nil && !errors.Is(err, errExtractEnded) {
		return err
	}
	if applyErr != nil {
		return errdefs.InvalidParameter(fmt.Errorf("extracting into %s: %w", p, applyErr))
	}
	s.event("extract-to-dir", v.id, map[string]string{"path": p})
	return nil
}

// errExtractEnded stops the rebasing goroutine once archive.Apply has stopped reading.
var errExtractEnded = errors.New("extraction ended")

// rebase copies the tar in to out with every name moved under dest.
func (v *rootView) rebase(in io.Reader, out io.Writer, dest string, noOverwrite, chown bool, uid, gid int) error {
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("reading the archive: %w", err))
		}
		name := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		if name == "" {
			continue // the destination directory itself keeps its owner and mode
		}
		if strings.HasPrefix(path.Base(name), ".wh.") {
			return errdefs.InvalidParameter(fmt.Errorf("cannot copy %s: names starting with .wh. are reserved for layer whiteouts", hdr.Name))
		}
		target := path.Join(dest, name)
		if noOverwrite {
			if err := v.checkOverwrite(target, dest, hdr.Typeflag == tar.TypeDir); err != nil {
				return err
			}
		}
		hdr.Name = target
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = path.Join(dest, strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/"))
		}
		if chown {
			hdr.Uid, hdr.Gid = uid, gid
		}
		if v.remap != nil {
			u, okU := v.remap.HostUID(hdr.Uid)
			g, okG := v.remap.HostGID(hdr.Gid)
			if !okU || !okG {
				return errdefs.InvalidParameter(fmt.Errorf("cannot copy %s: its owner %d:%d is outside the container's user namespace", hdr.Name, hdr.Uid, hdr.Gid))
			}
			hdr.Uid, hdr.Gid = u, g
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// checkOverwrite refuses to replace a directory with a non-directory or the reverse, with Docker's words.
func (v *rootView) checkOverwrite(target, dest string, isDir bool) error {
	dir, base := path.Split(target)
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := openat2(v.fd, path.Join(".", dir), how)
	if err != nil {
		return nil // the parent does not exist yet (or is not a directory): nothing to overwrite here
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return nil
	}
	existingDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case existingDir && !isDir:
		return errdefs.InvalidParameter(fmt.Errorf("cannot overwrite directory %q with non-directory %q", "/"+target, "/"+dest))
	case !existingDir && isDir:
		return errdefs.InvalidParameter(fmt.Errorf("cannot overwrite non-directory %q with directory %q", "/"+target, "/"+dest))
	}
	return nil
}
