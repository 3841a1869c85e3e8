package volume

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The local driver's options, as in Docker: type, device and o (mount(8)'s -t, device and -o) mount
// something at the volume's path instead of using a plain directory; size is not supported (Docker only
// supports it with xfs project quotas).
var validOptions = map[string]bool{"type": true, "device": true, "o": true}

// Which options need which others, as Docker checks them.
var requiredWith = map[string][]string{"device": {"type"}, "type": {"device"}, "o": {"device", "type"}}

func validateOptions(opts map[string]string) error {
	for k := range opts {
		if !validOptions[k] {
			if k == "size" {
				return errors.New("quota size requested but no quota support")
			}
			return fmt.Errorf("invalid option: %q", k)
		}
	}
	for k, need := range requiredWith {
		if _, ok := opts[k]; !ok {
			continue
		}
		for _, n := range need {
			if _, ok := opts[n]; !ok {
				return fmt.Errorf("missing required option: %q", n)
			}
		}
	}
	if _, _, err := mountFlags(opts["o"]); err != nil {
		return err
	}
	return nil
}

func hasDevice(opts map[string]string) bool { return opts["type"] != "" || opts["device"] != "" }

// mountFlagNames are the mount(8) options that are flags; everything else goes to the filesystem.
var mountFlagNames = map[string]struct {
	flag  uintptr
	clear bool
}{
	"ro": {unix.MS_RDONLY, false}, "rw": {unix.MS_RDONLY, true},
	"nosuid": {unix.MS_NOSUID, false}, "suid": {unix.MS_NOSUID, true},
	"nodev": {unix.MS_NODEV, false}, "dev": {unix.MS_NODEV, true},
	"noexec": {unix.MS_NOEXEC, false}, "exec": {unix.MS_NOEXEC, true},
	"sync": {unix.MS_SYNCHRONOUS, false}, "async": {unix.MS_SYNCHRONOUS, true},
	"noatime": {unix.MS_NOATIME, false}, "atime": {unix.MS_NOATIME, true},
	"nodiratime": {unix.MS_NODIRATIME, false}, "diratime": {unix.MS_NODIRATIME, true},
	"relatime": {unix.MS_RELATIME, false}, "norelatime": {unix.MS_RELATIME, true},
	"strictatime": {unix.MS_STRICTATIME, false}, "bind": {unix.MS_BIND, false}, "rbind": {unix.MS_BIND | unix.MS_REC, false},
}

func mountFlags(o string) (uintptr, string, error) {
	var flags uintptr
	var data []string
	for _, opt := range strings.Split(o, ",") {
		if opt == "" {
			continue
		}
		if f, ok := mountFlagNames[opt]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, opt)
	}
	return flags, strings.Join(data, ","), nil
}

// mountData mounts the volume's device at p unless something is mounted there already (a second
// container, or a berthd restarted while containers ran).
func mountData(p string, opts map[string]string) error {
	mounted, err := isMountpoint(p)
	if err != nil || mounted {
		return err
	}
	flags, data, _ := mountFlags(opts["o"])
	dev := opts["device"]
	if flags&unix.MS_BIND != 0 {
		// A bind source is a host path; it must exist, as Docker requires.
		if _, err := os.Stat(dev); err != nil {
			return err
		}
	}
	if err := unix.Mount(dev, p, opts["type"], flags, data); err != nil {
		return err
	}
	if flags&unix.MS_BIND != 0 && flags&^(unix.MS_BIND|unix.MS_REC) != 0 {
		// Bind ignores other flags until a remount.
		return unix.Mount("", p, "", flags|unix.MS_REMOUNT, "")
	}
	return nil
}

func unmountData(p string) error {
	for {
		mounted, err := isMountpoint(p)
		if err != nil || !mounted {
			return err
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return err
		}
	}
}

// isMountpoint looks p up in the mount table; comparing device numbers would miss a bind mount of a
// directory on the same filesystem.
func isMountpoint(p string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	p = filepath.Clean(p)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == p {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space) in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func statOf(fi fs.FileInfo) (*syscall.Stat_t, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return st, ok
}
