package userns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// HolderArg0 is argv[0] of the short-lived child whose user namespace carries the remap's mapping for
// idmapped mounts: berthd's main blocks on stdin when started under this name.
const HolderArg0 = "berth-userns"

// HolderMain is the child's whole life: it waits for its parent to let go.
func HolderMain() {
	var b [1]byte
	_, _ = os.Stdin.Read(b[:])
}

// nsHolder is a descriptor of a user namespace with the remap's mapping. The namespace outlives the
// child that made it for as long as the descriptor is open.
type nsHolder struct {
	once sync.Once
	fd   int
	err  error
}

// nsFd returns the descriptor, making the namespace on first use.
func (r *Remap) nsFd() (int, error) {
	if r.holder == nil {
		r.holder = &nsHolder{}
	}
	h := r.holder
	h.once.Do(func() { h.fd, h.err = r.makeNamespace() })
	return h.fd, h.err
}

func (r *Remap) makeNamespace() (int, error) {
	stdin, w, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer stdin.Close()
	defer w.Close()
	cmd := &exec.Cmd{
		Path:  "/proc/self/exe",
		Args:  []string{HolderArg0},
		Stdin: stdin,
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER,
			UidMappings: SysMap(r.UIDs),
			GidMappings: SysMap(r.GIDs),
			Pdeathsig:   syscall.SIGKILL,
		},
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("make a user namespace for idmapped mounts: %w", err)
	}
	defer cmd.Wait()
	defer w.Close()
	fd, err := unix.Open("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = cmd.Process.Kill()
		return -1, fmt.Errorf("open the user namespace for idmapped mounts: %w", err)
	}
	return fd, nil
}

// idmapped returns a detached, idmapped clone of the mount tree at path: through it, a file owned by
// uid 0 on disk shows as the container root's host uid, and a file created as that uid lands as 0.
func (r *Remap) idmapped(path string, recursive bool) (int, error) {
	nsfd, err := r.nsFd()
	if err != nil {
		return -1, err
	}
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, uint(flags))
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", path, err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(nsfd)}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("idmap %s: %w", path, unsupported(err))
	}
	return fd, nil
}

func unsupported(err error) error {
	if err == unix.EINVAL || err == unix.ENOSYS || err == unix.EPERM {
		return fmt.Errorf("%w (the kernel or filesystem does not support idmapped mounts: Linux 5.12+ on ext4, xfs or btrfs)", err)
	}
	return err
}

// BindIDMapped mounts an idmapped view of src at target, which must exist.
func (r *Remap) BindIDMapped(src, target string, recursive bool) error {
	fd, err := r.idmapped(src, recursive)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach idmapped %s at %s: %w", src, target, err)
	}
	return nil
}

// Check makes sure a remapped container's root can work with roots (the data and exec roots, the data
// root first): it may pass through every directory above them (it mounts what it needs from there by
// path). It then tries an overlay over idmapped layers in the data root and sets IDMapped; without
// them containers get chowned copies (see ShiftTree). The environment variable BERTH_USERNS_IDMAP=0
// forces the copies. A daemon that cannot run remapped containers says so at start, not at the first.
func (r *Remap) Check(roots ...string) (fallbackReason error, err error) {
	for _, root := range roots {
		for dir := root; ; dir = filepath.Dir(dir) {
			fi, err := os.Stat(dir)
			if err != nil {
				return nil, err
			}
			st := fi.Sys().(*syscall.Stat_t)
			byGroup := int(st.Gid) == r.RootGID() && fi.Mode().Perm()&0o010 != 0
			if fi.Mode().Perm()&0o001 == 0 && !byGroup {
				return nil, fmt.Errorf("--userns-remap: %s is not searchable by others (mode %v), so containers' remapped root (uid %d) cannot reach %s: chmod o+x %s",
					dir, fi.Mode().Perm(), r.RootUID(), root, dir)
			}
			if dir == "/" {
				break
			}
		}
	}
	if os.Getenv("BERTH_USERNS_IDMAP") == "0" {
		fallbackReason = errors.New("BERTH_USERNS_IDMAP=0")
	} else {
		fallbackReason = r.tryOverlay(roots[0])
	}
	r.IDMapped = fallbackReason == nil
	return fallbackReason, nil
}

// tryOverlay mounts a small overlay over idmapped layers in a scratch directory under dir.
func (r *Remap) tryOverlay(dir string) error {
	tmp, err := os.MkdirTemp(dir, "idmap-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, d := range []string{"lower", "rw/upper", "rw/work", "merged"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o700); err != nil {
			return err
		}
	}
	merged := filepath.Join(tmp, "merged")
	if err := r.MountOverlay(merged, []string{filepath.Join(tmp, "lower")}, filepath.Join(tmp, "rw/upper"), filepath.Join(tmp, "rw/work"), nil, 0); err != nil {
		return err
	}
	return unix.Unmount(merged, unix.MNT_DETACH)
}

// MountOverlay mounts an overlay of lowers under upper (with its work directory, which must share
// upper's parent) at target, every layer seen through an idmapped mount. opts are further overlay
// options ("index=off", ...), flags the mount's flags.
//
// Overlayfs does its own writes (the work directory, copy-ups) with the credentials of whoever mounted
// it, and through the idmapped upper layer only the remapped ids can be written: host root, uid 0, maps
// to nothing there (EOVERFLOW). So the mount is made by a thread whose filesystem ids are the container
// root's host ids, capabilities intact. The thread is thrown away afterwards rather than trusted to
// switch back.
func (r *Remap) MountOverlay(target string, lowers []string, upper, work string, opts []string, flags uintptr) error {
	if filepath.Dir(upper) != filepath.Dir(work) {
		return fmt.Errorf("overlay upper %s and work %s must share a directory", upper, work)
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	var lowerPaths []string
	for _, l := range lowers {
		fd, err := r.idmapped(l, false)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
		lowerPaths = append(lowerPaths, fdPath(fd))
	}
	data := append([]string(nil), opts...)
	data = append(data, "lowerdir="+strings.Join(lowerPaths, ":"))
	if upper != "" {
		fd, err := r.idmapped(filepath.Dir(upper), false)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
		data = append(data, "upperdir="+fdPath(fd)+"/"+filepath.Base(upper), "workdir="+fdPath(fd)+"/"+filepath.Base(work))
	}
	return r.AsRoot(func() error {
		if err := unix.Mount("overlay", target, "overlay", flags, strings.Join(data, ",")); err != nil {
			return fmt.Errorf("mount overlay on %s: %w", target, err)
		}
		return nil
	})
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// AsRoot runs fn on a thread of its own whose filesystem ids are the container root's host ids, with
// berthd's capabilities: files it creates in a remapped container's root filesystem are the container
// root's (host root's would map to nothing there and fail with EOVERFLOW). fn must not hand its work
// to other goroutines, which run on other threads. The thread is thrown away afterwards rather than
// trusted to switch back.
func (r *Remap) AsRoot(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		// setfsuid drops the effective file capabilities; they are put back from the permitted set.
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var caps [2]unix.CapUserData
		if err := unix.Capget(&hdr, &caps[0]); err != nil {
			done <- err
			return
		}
		unix.Setfsgid(r.RootGID())
		unix.Setfsuid(r.RootUID())
		if err := unix.Capset(&hdr, &caps[0]); err != nil {
			done <- fmt.Errorf("restore capabilities: %w", err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// MountSysfs mounts at target a sysfs that shows the network namespace at netnsPath. A container in a
// user namespace of its own may not mount sysfs itself when its network namespace was made by the
// engine (it belongs to the host's user namespace), and the host's /sys would show the host's network
// devices. sysfs takes its network namespace from whoever creates it, so a thread that has joined the
// container's makes it, and is thrown away afterwards.
func MountSysfs(netnsPath, target string) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		done <- mountSysfsIn(netnsPath, target)
	}()
	return <-done
}

func mountSysfsIn(netnsPath, target string) error {
	ns, err := unix.Open(netnsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = unix.Setns(ns, unix.CLONE_NEWNET)
	unix.Close(ns)
	if err != nil {
		return fmt.Errorf("join network namespace %s: %w", netnsPath, err)
	}
	fsfd, err := unix.Fsopen("sysfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen sysfs: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create sysfs: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("fsmount sysfs: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("attach sysfs at %s: %w", target, err)
	}
	return nil
}
