package plumbing

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewNetNS creates a network namespace and pins it with a bind mount at path, so it lives on without any
// process in it: berthd sets it up before the container's init joins it, and it survives berthd restarts.
func NewNetNS(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread that unshares is left in the new namespace; a goroutine that ends while locked takes
		// its thread with it, so no other goroutine ever runs there.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare network namespace: %w", err)
			return
		}
		// No IPv6 in Berth's networks yet: interfaces made in this namespace from now on (eth0...) skip
		// IPv6 autoconfiguration (link-local addresses, duplicate address detection), whose set-up and
		// teardown cost back-to-back runs 10 ms here; lo keeps ::1. Written from this thread,
		// /proc/sys/net is the new namespace's.
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("pin network namespace: %w", err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// RemoveNetNS unpins a namespace made by NewNetNS; the kernel frees it once no process is left in it.
func RemoveNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// PrivateDir makes dir a private mount of its own, so that namespace pins made under it do not
// propagate into the mount namespaces of containers started meanwhile (which would keep them alive).
func PrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	if !isMountPoint(dir) {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", dir, err)
	}
	return nil
}

func isMountPoint(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Stat(dir, &st) != nil || unix.Stat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	if st.Dev != parent.Dev {
		return true
	}
	// A bind mount of a directory onto itself keeps the device: ask mountinfo.
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	return containsMountPoint(string(data), dir)
}

func containsMountPoint(mountinfo, dir string) bool {
	for _, line := range strings.Split(mountinfo, "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// OpenNetNS opens the namespace pinned at path for netlink handles made in it.
func OpenNetNS(path string) (netns.NsHandle, error) {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return 0, fmt.Errorf("open network namespace %s: %w", path, err)
	}
	return h, nil
}

// HandleAt is a netlink handle working in the network namespace pinned at path. The handle keeps its own
// sockets there; nothing else stays open.
func HandleAt(path string, families ...int) (*netlink.Handle, error) {
	ns, err := OpenNetNS(path)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns, families...)
}

// Do runs fn on a locked thread inside the network namespace pinned at path (or opened from a
// /proc/<pid>/ns/net path) and returns its error. The caller's thread never changes namespace. Sockets
// fn opens stay in that namespace after it returns, and /proc/sys/net written from fn is the
// namespace's own.
func Do(path string, fn func() error) error {
	target, err := OpenNetNS(path)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		err = fn()
		// A thread that cannot go back stays locked and ends with this goroutine.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Sysctl writes value to /proc/sys/<key> (key like "net/ipv4/ip_forward") inside the network namespace
// at path; "" means the caller's own.
func Sysctl(path, key, value string) error {
	write := func() error { return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644) }
	if path == "" {
		return write()
	}
	return Do(path, write)
}
