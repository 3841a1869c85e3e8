package linux

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The runtime binary that becomes a container's init or exec helper must not be writable from the
// container (CVE-2019-5736): a process there can reach it through /proc/<pid>/exe of the helper, or of
// its own when an image's entrypoint is a script starting "#!/proc/self/exe" (the kernel resolves that
// in the runtime's process, so the script runs the runtime binary as a container process). Holding
// that file open, it could rewrite the host's binary once nothing executes it any more.
//
// So the helpers are never exec'd from the host path. The first use of a binary takes a detached,
// read-only bind mount of just that file (open_tree with OPEN_TREE_CLONE, then mount_setattr): it is
// in no mount namespace, so no one can remount it, and any reopening for write through /proc fails with
// EROFS. The helpers are exec'd as /proc/self/fd/N of that O_PATH descriptor, which the caller keeps for
// its life (close-on-exec, so no child inherits it). Kernels without the new mount API (before 5.12)
// get a sealed memfd copy instead, as runc did for years: writes to it cannot happen, and it is not the
// host's file anyway.

// protectedFdMin is the lowest number a protected binary's descriptor takes.
const protectedFdMin = 64

var protected struct {
	sync.Mutex
	paths map[string]string
}

// protectedExe returns the path to exec instead of path ("" = /proc/self/exe). On failure it returns
// the error; callers must not fall back to the host path.
func protectedExe(path string) (string, error) {
	if path == "" {
		path = "/proc/self/exe"
	}
	protected.Lock()
	defer protected.Unlock()
	if p, ok := protected.paths[path]; ok {
		return p, nil
	}
	fd, err := readonlyClone(path)
	if err != nil {
		if fd, err = sealedCopy(path); err != nil {
			return "", fmt.Errorf("protect runtime binary %s: %w", path, err)
		}
	}
	// Out of the way of the fds exec.Cmd dup2s into a child (0-2 and ExtraFiles from 3): the child execs
	// this path after those moves.
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, protectedFdMin)
	unix.Close(fd)
	if err != nil {
		return "", fmt.Errorf("protect runtime binary %s: %w", path, err)
	}
	p := "/proc/self/fd/" + strconv.Itoa(high)
	if protected.paths == nil {
		protected.paths = map[string]string{}
	}
	protected.paths[path] = p
	return p, nil
}

// readonlyClone is an O_PATH descriptor of path on a private, detached, read-only bind mount.
func readonlyClone(path string) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("open_tree: %w", err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount_setattr: %w", err)
	}
	return fd, nil
}

// sealedCopy is a memfd holding a copy of path, sealed against every change.
func sealedCopy(path string) (int, error) {
	src, err := os.Open(path)
	if err != nil {
		return -1, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "berth-runtime")
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return -1, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(dst.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		dst.Close()
		return -1, fmt.Errorf("seal memfd: %w", err)
	}
	// Keep the descriptor past dst: the returned fd is the process's for good.
	nfd, err := unix.FcntlInt(dst.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	dst.Close()
	return nfd, err
}
