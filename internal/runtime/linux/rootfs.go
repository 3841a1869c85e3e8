package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/berth-dev/berth/internal/runtime/spec"
)

// setupRootfs builds the container's filesystem view and pivots into it.
func setupRootfs(s *specs.Spec) error {
	rootfs := s.Root.Path
	// Nothing we mount may propagate back to the host.
	prop := uintptr(unix.MS_PRIVATE | unix.MS_REC)
	if p, ok := propagationFlag[s.Linux.RootfsPropagation]; ok {
		prop = p
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("make / %s: %w", s.Linux.RootfsPropagation, err)
	}
	// pivot_root needs the new root to be a mount point.
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs: %w", err)
	}
	devIsTmpfs := false
	for _, m := range s.Mounts {
		if err := mountOne(rootfs, m); err != nil {
			return err
		}
		if filepath.Clean(m.Destination) == "/dev" && m.Type == "tmpfs" {
			devIsTmpfs = true
		}
	}
	if devIsTmpfs {
		if err := createDevices(rootfs, s.Linux.Devices); err != nil {
			return err
		}
		if err := devSymlinks(rootfs); err != nil {
			return err
		}
	}
	if err := pivotRoot(rootfs); err != nil {
		return err
	}
	for k, v := range s.Linux.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(p, []byte(v), 0); err != nil {
			return fmt.Errorf("set sysctl %s: %w", k, err)
		}
	}
	for _, p := range s.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	for _, p := range s.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	if s.Root.Readonly {
		flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY) | statfsFlags("/")
		if err := unix.Mount("", "/", "", flags, ""); err != nil {
			return fmt.Errorf("make rootfs read-only: %w", err)
		}
	}
	return nil
}

// mountOne mounts m below rootfs; the destination is resolved inside rootfs so a symlink in the image
// cannot redirect a mount onto the host.
func mountOne(rootfs string, m specs.Mount) error {
	dest, err := spec.JoinInRoot(rootfs, m.Destination)
	if err != nil {
		return fmt.Errorf("resolve mount %s: %w", m.Destination, err)
	}
	flags, prop, data := parseMountOptions(m.Options)
	isBind := m.Type == "bind" || flags&unix.MS_BIND != 0
	if isBind {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind mount source %s: %w", m.Source, err)
		}
		if err := makeMountpoint(dest, fi.IsDir()); err != nil {
			return err
		}
		if err := unix.Mount(m.Source, dest, "", unix.MS_BIND|(flags&unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", m.Source, m.Destination, err)
		}
		// A bind ignores every other flag; they take a remount of the new mount.
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); rest != 0 {
			if err := unix.Mount("", dest, "", unix.MS_BIND|unix.MS_REMOUNT|rest|statfsFlags(dest), ""); err != nil {
				return fmt.Errorf("remount %s: %w", m.Destination, err)
			}
		}
	} else {
		if err := makeMountpoint(dest, true); err != nil {
			return err
		}
		if m.Type == "cgroup" {
			if err := mountCgroups(dest, flags); err != nil {
				return fmt.Errorf("mount cgroups on %s: %w", m.Destination, err)
			}
		} else if err := unix.Mount(m.Source, dest, m.Type, flags, data); err != nil {
			if m.Type != "sysfs" || !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("mount %s on %s: %w", m.Type, m.Destination, err)
			}
			// A user namespace that does not own the network namespace may not mount sysfs: show the
			// host's, read-only, as runc does.
			if err := unix.Mount("/sys", dest, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("bind /sys on %s: %w", m.Destination, err)
			}
			if err := unix.Mount("", dest, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|statfsFlags(dest), ""); err != nil {
				return fmt.Errorf("remount %s read-only: %w", m.Destination, err)
			}
		}
	}
	for _, p := range prop {
		if err := unix.Mount("", dest, "", p, ""); err != nil {
			return fmt.Errorf("set propagation of %s: %w", m.Destination, err)
		}
	}
	return nil
}

func makeMountpoint(dest string, dir bool) error {
	if dir {
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", dest, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("create mount point %s: %w", dest, err)
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		if errors.Is(err, unix.EISDIR) {
			return nil
		}
		return fmt.Errorf("create mount point %s: %w", dest, err)
	}
	return f.Close()
}

// mountCgroups mounts the container's view of its cgroups on dest: cgroup2 itself on a unified host;
// on v1, a tmpfs holding every hierarchy, each mounted from inside the cgroup namespace so that its
// root is the container's own cgroup.
func mountCgroups(dest string, flags uintptr) error {
	ro := flags & unix.MS_RDONLY
	base := flags&^unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if cgroups.Mode() == cgroups.Unified {
		return unix.Mount("cgroup2", dest, "cgroup2", base|ro, "")
	}
	if err := unix.Mount("tmpfs", dest, "tmpfs", base, "mode=755"); err != nil {
		return err
	}
	mounts, err := cgroups.V1Mounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		name := filepath.Base(m.Mountpoint)
		dir := filepath.Join(dest, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		data := strings.Join(m.Subsystems, ",")
		if len(m.Subsystems) == 1 && strings.HasPrefix(m.Subsystems[0], "name=") {
			data = "none," + data
		}
		if err := unix.Mount("cgroup", dir, "cgroup", base|ro, data); err != nil {
			return fmt.Errorf("mount %s: %w", data, err)
		}
		// "cpu,cpuacct" is also reachable as "cpu" and "cpuacct", as on the host.
		for _, sub := range m.Subsystems {
			if sub != name && !strings.HasPrefix(sub, "name=") {
				_ = os.Symlink(name, filepath.Join(dest, sub))
			}
		}
	}
	if ro != 0 {
		return unix.Mount("", dest, "", unix.MS_REMOUNT|base|ro, "mode=755")
	}
	return nil
}

// createDevices makes the spec's device nodes in the container's /dev tmpfs. Where mknod is not
// allowed the host's node is bind-mounted instead.
func createDevices(rootfs string, devs []specs.LinuxDevice) error {
	for _, d := range devs {
		dest, err := spec.JoinInRoot(rootfs, d.Path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		var typ uint32
		switch d.Type {
		case "c", "u":
			typ = unix.S_IFCHR
		case "b":
			typ = unix.S_IFBLK
		case "p":
			typ = unix.S_IFIFO
		default:
			return fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
		}
		mode := uint32(0o666)
		if d.FileMode != nil {
			mode = uint32(d.FileMode.Perm())
		}
		_ = os.Remove(dest)
		err = unix.Mknod(dest, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
		if errors.Is(err, unix.EPERM) {
			if err := makeMountpoint(dest, false); err != nil {
				return err
			}
			if err := unix.Mount(d.Path, dest, "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind device %s: %w", d.Path, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("mknod %s: %w", d.Path, err)
		}
		uid, gid := 0, 0
		if d.UID != nil {
			uid = int(*d.UID)
		}
		if d.GID != nil {
			gid = int(*d.GID)
		}
		if err := unix.Chown(dest, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", d.Path, err)
		}
	}
	return nil
}

// devSymlinks creates the links every Linux userland expects in /dev.
func devSymlinks(rootfs string) error {
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		p := filepath.Join(rootfs, "dev", l[1])
		_ = os.Remove(p)
		if err := os.Symlink(l[0], p); err != nil {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// pivotRoot makes rootfs the root and detaches the old root. pivot_root(".", ".") stacks the old root
// on top of the new one, so unmounting "." afterwards removes exactly the old root, with no temporary
// directory left in the container.
func pivotRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// The old root must not propagate our unmount to the host's mounts.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

// maskPath hides p: a file is covered with /dev/null, a directory with an empty read-only tmpfs.
func maskPath(p string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	if fi.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

// readonlyPath binds p onto itself and remounts that bind read-only.
func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("bind %s read-only: %w", p, err)
	}
	flags := uintptr(unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC) | statfsFlags(p)
	if err := unix.Mount("", p, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", p, err)
	}
	return nil
}
