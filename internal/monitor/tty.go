package monitor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/spec"
)

// A TTY container's pseudo-terminals come from a devpts instance of its own that the monitor mounts at
// <exec-root>/containers/<id>/pts for the container's lifetime (create to delete). The bundle's /dev/pts
// mount is turned into a bind of that instance at each start, so the container sees the terminal the
// monitor holds as /dev/pts/0, and `tty` inside prints that name. An exec with a TTY takes its terminal
// from whatever devpts the container has at /dev/pts, through the container's root, so it works for
// containers without a TTY too.

// devptsOptions are Docker's: a private instance, a ptmx anyone in the container may open, and
// terminals owned by the tty group.
const devptsOptions = "newinstance,ptmxmode=0666,mode=0620,gid=5"

func ptsDir(dir string) string { return filepath.Join(dir, "pts") }

// mountPts gives a TTY container its devpts instance.
func mountPts(dir string) error {
	p := ptsDir(dir)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("devpts", p, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, devptsOptions); err != nil {
		return fmt.Errorf("mount devpts for the container's terminal: %w", err)
	}
	return nil
}

// unmountPts undoes mountPts. The container's own bind keeps the instance alive while it runs.
func unmountPts(dir string) error {
	p := ptsDir(dir)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// openPty opens a new pseudo-terminal from the ptmx fd (already open) and returns its master (non-blocking,
// for the monitor's poller) and replica (blocking, for the process).
func openPty(ptmx int) (master, replica *os.File, err error) {
	defer func() {
		if err != nil {
			unix.Close(ptmx)
		}
	}()
	if _, err := unix.IoctlGetInt(ptmx, unix.TIOCGPTN); err != nil {
		return nil, nil, fmt.Errorf("not a pseudo-terminal multiplexer: %w", err)
	}
	if err := unix.IoctlSetPointerInt(ptmx, unix.TIOCSPTLCK, 0); err != nil {
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the replica that belongs to this master without a path lookup, so nothing in a
	// container's /dev/pts can redirect it.
	r, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(ptmx), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if e != 0 {
		return nil, nil, fmt.Errorf("open pty replica: %w", e)
	}
	return os.NewFile(uintptr(ptmx), "pty-master"), os.NewFile(r, "pty-replica"), nil
}

const ptmxFlags = unix.O_RDWR | unix.O_NOCTTY | unix.O_CLOEXEC | unix.O_NONBLOCK

// newContainerPty opens a terminal in a TTY container's own devpts instance.
func newContainerPty(dir string) (master, replica *os.File, err error) {
	fd, err := unix.Open(filepath.Join(ptsDir(dir), "ptmx"), ptmxFlags, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open the container's ptmx: %w", err)
	}
	return openPty(fd)
}

// newPtyInRoot opens a terminal in the devpts a running container has at /dev/pts, resolving the path
// inside the container's root (its init's /proc/<pid>/root): a symlink planted in the container cannot
// send the monitor to a file of the host.
func newPtyInRoot(pid int) (master, replica *os.File, err error) {
	root, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, errdefs.Conflict(fmt.Errorf("container not running: %w", err))
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, "dev/pts/ptmx", &unix.OpenHow{
		Flags:   ptmxFlags,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/pts/ptmx in the container: %w", err)
	}
	return openPty(fd)
}

// resizePty sets a terminal's window size; the kernel sends SIGWINCH to its foreground process group.
func resizePty(master *os.File, height, width uint16) error {
	rc, err := master.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	// Not master.Fd(): that would switch the fd to blocking mode under the poller's feet.
	err = rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
	})
	if err != nil {
		return err
	}
	return ioErr
}

// bindPtsInBundle points the bundle's /dev/pts at the container's devpts instance, and gives the
// terminal to the container's root (and tty group) when the container has a user namespace of its own:
// the monitor made it as the host's root, whom the container sees as nobody. A bundle without a
// config.json is left alone (the launcher will say what is wrong with it).
func bindPtsInBundle(bundle, dir string, terminal *os.File) error {
	s, err := spec.ReadBundle(bundle)
	if err != nil {
		if os.IsNotExist(err) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		return err
	}
	bind := false
	for i, m := range s.Mounts {
		if filepath.Clean(m.Destination) == "/dev/pts" {
			s.Mounts[i].Type, s.Mounts[i].Source = "bind", ptsDir(dir)
			s.Mounts[i].Options = []string{"rbind", "nosuid", "noexec"}
			bind = true
		}
	}
	if !bind {
		return nil
	}
	if err := openToRemappedRoot(s, dir); err != nil {
		return err
	}
	if uid, gid, ok := remappedTTYOwner(s); ok && terminal != nil {
		if err := terminal.Chown(uid, gid); err != nil {
			return fmt.Errorf("give the terminal to the container's root: %w", err)
		}
	}
	return spec.WriteBundle(bundle, s)
}

// remappedTTYOwner is the host uid of a remapped container's root and gid of its tty group (5).
func remappedTTYOwner(s *specs.Spec) (int, int, bool) {
	if s.Linux == nil || len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0 {
		return 0, 0, false
	}
	u, g := s.Linux.UIDMappings[0], s.Linux.GIDMappings[0]
	if u.ContainerID != 0 || g.ContainerID != 0 || g.Size <= 5 {
		return 0, 0, false
	}
	return int(u.HostID), int(g.HostID) + 5, true
}

// openToRemappedRoot lets a container in a user namespace of its own reach its devpts instance, which
// its init binds by path: the containers directory becomes searchable (not listable) by others, and the
// container's own directory by the container root's group only, as its other files are.
func openToRemappedRoot(s *specs.Spec, dir string) error {
	if s.Linux == nil || len(s.Linux.GIDMappings) == 0 {
		return nil
	}
	if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
		return err
	}
	if err := os.Chown(dir, 0, int(s.Linux.GIDMappings[0].HostID)); err != nil {
		return err
	}
	return os.Chmod(dir, 0o710)
}
