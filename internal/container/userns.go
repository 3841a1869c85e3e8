package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/userns"
	"github.com/docker/docker/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// RemappedRootfs is implemented by a RootfsManager that can mount a container's root filesystem as the
// container's remapped root sees it (userns.Remap): image files owned by root on disk show as the
// container root's host uid, and what the container writes lands on disk with the container's ids.
type RemappedRootfs interface {
	MountRemapped(ctx context.Context, id, target string, r *userns.Remap) error
}

// remap is the daemon's --userns-remap for a container, nil when it runs in the host's user namespace
// (no remapping, or --userns host).
func (s *Service) remap(r *record) *userns.Remap {
	if s.cfg.Remap == nil || container.UsernsMode(r.HostConfig.UsernsMode).IsHost() {
		return nil
	}
	return s.cfg.Remap
}

// validateUserns checks --userns, and the options a remapped container cannot have, with Docker's words.
func (s *Service) validateUserns(hc *container.HostConfig) error {
	mode := container.UsernsMode(hc.UsernsMode)
	if mode != "" && !mode.IsHost() {
		return errdefs.InvalidParameter(fmt.Errorf("invalid USER mode: %s (only \"host\" is supported)", hc.UsernsMode))
	}
	if s.cfg.Remap == nil || mode.IsHost() {
		return nil
	}
	if hc.Privileged {
		return errdefs.InvalidParameter(errors.New("privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode"))
	}
	if container.NetworkMode(hc.NetworkMode).IsHost() {
		return errdefs.InvalidParameter(errors.New("cannot share the host's network namespace when user namespaces are enabled"))
	}
	return nil
}

// mountRootfs mounts the container's root filesystem for a run: remapped when the container is.
func (s *Service) mountRootfs(ctx context.Context, r *record, target string) error {
	rm := s.remap(r)
	if rm == nil {
		return s.cfg.Rootfs.Mount(ctx, r.ID, target)
	}
	m, ok := s.cfg.Rootfs.(RemappedRootfs)
	if !ok {
		return errdefs.NotImplemented(errors.New("the snapshotter cannot mount a root filesystem for user namespaces"))
	}
	return m.MountRemapped(ctx, r.ID, target, rm)
}

// prepareRemapped lets the container's root reach what its init mounts by path: the directories on the
// way to its rootfs and its own files are opened to the remapped root group (0710, as Docker makes its
// remapped roots), and the files the container may edit (hosts, hostname, resolv.conf) become its
// root's.
func (s *Service) prepareRemapped(r *record, rm *userns.Remap) error {
	gid := rm.RootGID()
	for _, d := range []string{s.cfg.ExecRoot, s.bundleDir(r.ID), s.cfg.Root, s.dataDir(r.ID)} {
		if err := os.Chown(d, 0, gid); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o710); err != nil {
			return err
		}
	}
	for _, f := range []string{r.HostsPath, r.HostnamePath, r.ResolvPath} {
		if err := os.Chown(f, rm.RootUID(), rm.RootGID()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// remapVolume gives a remapped container an idmapped view of a volume's directory, so that files the
// container's root writes there are owned by root on disk, as they are for any other container, and a
// volume can be shared between remapped and plain containers. Host directories given with -v /path:...
// are not remapped: their files keep their host owners, as in Docker.
// A volume over the user's own device or directory (plain) is bound there as it is, like a -v bind: the
// volumes directory is root's only, so the container's root could not reach it by its own path.
func (s *Service) remapVolume(r *record, rm *userns.Remap, src string, n int, plain bool) (string, error) {
	dir, err := s.idmapDir(r.ID, rm, strconv.Itoa(n))
	if err != nil {
		return "", err
	}
	if plain {
		if err := unix.Mount(src, dir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return "", fmt.Errorf("bind %s: %w", src, err)
		}
		return dir, nil
	}
	if err := rm.BindIDMapped(src, dir, true); err != nil {
		return "", err
	}
	return dir, nil
}

// idmapDir makes <bundle>/idmap/<name>, a mount point for what a remapped container's init mounts from
// the host, reachable by the container's root.
func (s *Service) idmapDir(id string, rm *userns.Remap, name string) (string, error) {
	parent := filepath.Join(s.bundleDir(id), "idmap")
	dir := filepath.Join(parent, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.Chown(parent, 0, rm.RootGID()); err != nil {
		return "", err
	}
	return dir, os.Chmod(parent, 0o710)
}

// dropRemapMounts detaches the idmapped views made for a container's start. The container keeps its
// own copies in its mount namespace.
func (s *Service) dropRemapMounts(id string) {
	dirs, _ := filepath.Glob(filepath.Join(s.bundleDir(id), "idmap", "*"))
	for _, d := range dirs {
		_ = unix.Unmount(d, unix.MNT_DETACH)
		_ = os.Remove(d)
	}
}

// remapSpec adds the user namespace to a remapped container's options.
func remapSpec(rm *userns.Remap) (uids, gids []specs.LinuxIDMapping) {
	if rm == nil {
		return nil, nil
	}
	return rm.UIDs, rm.GIDs
}

// remapSysfs gives a remapped container with a network namespace of the engine's a sysfs made for that
// namespace (see userns.MountSysfs), bound where the spec mounts /sys.
func (s *Service) remapSysfs(sp *specs.Spec, rm *userns.Remap, netns, id string) error {
	if netns == "" {
		return nil
	}
	for i, m := range sp.Mounts {
		if m.Type != "sysfs" {
			continue
		}
		dir, err := s.idmapDir(id, rm, "sys")
		if err != nil {
			return err
		}
		if err := userns.MountSysfs(netns, dir); err != nil {
			return err
		}
		opts := []string{"rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"}
		sp.Mounts[i] = specs.Mount{Destination: m.Destination, Type: "bind", Source: dir, Options: opts}
	}
	return nil
}

// unshiftTar maps the owners in a tar read from a shifted view back to the container's ids; an owner
// outside the container's range becomes its nobody (65534).
func unshiftTar(r io.ReadCloser, rm *userns.Remap) io.ReadCloser {
	if rm == nil {
		return r
	}
	out := archive.RewriteHeaders(r, func(h *tar.Header) {
		var ok bool
		if h.Uid, ok = rm.ContainerUID(h.Uid); !ok {
			h.Uid = 65534
		}
		if h.Gid, ok = rm.ContainerGID(h.Gid); !ok {
			h.Gid = 65534
		}
		h.Uname, h.Gname = "", ""
	})
	return closeBoth{out, r}
}

// closeBoth closes a rewritten stream and the one it reads, so that the producer of the latter stops.
type closeBoth struct {
	io.ReadCloser
	under io.Closer
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	c.under.Close()
	return err
}

// shiftVolumeRoot gives a volume's directory, still owned by host root, to the remapped root.
func shiftVolumeRoot(dir string, rm *userns.Remap) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	if st.Uid != 0 || st.Gid != 0 {
		return nil
	}
	return os.Chown(dir, rm.RootUID(), rm.RootGID())
}
