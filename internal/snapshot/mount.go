package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) call, as Prepare and Mounts describe a snapshot.
type Mount struct {
	Type    string   // "bind" or "overlay"
	Source  string   // directory for bind, "overlay" for overlay
	Options []string // "rbind", "ro"/"rw", and overlay's key=value options
}

// Mount mounts m at target (which must exist).
func (m Mount) Mount(target string) error {
	var flags uintptr
	var data []string
	ro := false
	for _, o := range m.Options {
		switch o {
		case "ro":
			ro = true
		case "rw":
		case "bind":
			flags |= unix.MS_BIND
		case "rbind":
			flags |= unix.MS_BIND | unix.MS_REC
		default:
			data = append(data, o)
		}
	}
	if m.Type == "bind" {
		flags |= unix.MS_BIND
	}
	if flags&unix.MS_BIND != 0 {
		if err := unix.Mount(m.Source, target, "", flags, ""); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", m.Source, target, err)
		}
		if ro {
			// A bind mount ignores MS_RDONLY on creation; it takes a remount.
			if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remount %s read-only: %w", target, err)
			}
		}
		return nil
	}
	if ro {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(m.Source, target, m.Type, flags, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
	}
	return nil
}

// MountAll mounts every mount at target in order; on failure it undoes what it did.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := m.Mount(target); err != nil {
			for j := 0; j < i; j++ {
				Unmount(target)
			}
			return err
		}
	}
	return nil
}

// Unmount unmounts everything stacked at target. Not being mounted is not an error; a busy mount is
// detached lazily so that a container teardown never hangs on a straggling process.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		switch {
		case err == nil:
			continue // there may be more mounts stacked on target
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// Supported reports whether overlayfs can be mounted with upper and work directories on the
// filesystem holding root (it fails, for instance, on top of another overlay or on some network
// filesystems). nil means use NewOverlay; otherwise use NewCopy.
func Supported(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(root, "overlay-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{
		"index=off",
		"lowerdir=" + filepath.Join(dir, "lower"),
		"upperdir=" + filepath.Join(dir, "upper"),
		"workdir=" + filepath.Join(dir, "work"),
	}}
	merged := filepath.Join(dir, "merged")
	if err := m.Mount(merged); err != nil {
		return fmt.Errorf("overlayfs not supported on %s: %w", root, err)
	}
	return Unmount(merged)
}
