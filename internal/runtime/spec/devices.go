package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Device is one --device: a host node (or a directory of them) made available in the container.
type Device struct {
	PathOnHost, PathInContainer string
	// CgroupPermissions is any of "rwm"; "" means "rwm".
	CgroupPermissions string
}

var errNotDevice = errors.New("not a device node")

// hostDevice describes the host node at path as a container device at dst.
func hostDevice(path, dst string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errNotDevice
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: dst, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}

// userDevices resolves --device entries into nodes and the cgroup rules that allow them. A directory
// brings every device below it, at the same relative path under the container path, as Docker does.
func userDevices(list []Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	add := func(d specs.LinuxDevice, perms string) {
		if perms == "" {
			perms = "rwm"
		}
		major, minor := d.Major, d.Minor
		devs = append(devs, d)
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: perms})
	}
	for _, u := range list {
		dst := u.PathInContainer
		if dst == "" {
			dst = u.PathOnHost
		}
		wrap := func(err error) error {
			var errno unix.Errno
			if errors.As(err, &errno) {
				err = errno // Docker's wording: the bare reason
			}
			return errdefs.InvalidParameter(fmt.Errorf("error gathering device information while adding custom device %q: %w", u.PathOnHost, err))
		}
		fi, err := os.Stat(u.PathOnHost)
		if err != nil {
			return nil, nil, wrap(err)
		}
		if !fi.IsDir() {
			d, err := hostDevice(u.PathOnHost, dst)
			if err != nil {
				return nil, nil, wrap(err)
			}
			add(d, u.CgroupPermissions)
			continue
		}
		err = filepath.WalkDir(u.PathOnHost, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(u.PathOnHost, p)
			d, err := hostDevice(p, filepath.Join(dst, rel))
			if err == nil {
				add(d, u.CgroupPermissions)
			}
			return nil // other files in the directory are not devices: skipped, as Docker does
		})
		if err != nil {
			return nil, nil, wrap(err)
		}
	}
	return devs, rules, nil
}

var deviceCgroupRuleRe = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)

// ParseDeviceCgroupRule reads a --device-cgroup-rule ("c 1:3 mr", "a *:* rwm").
func ParseDeviceCgroupRule(rule string) (specs.LinuxDeviceCgroup, error) {
	m := deviceCgroupRuleRe.FindStringSubmatch(strings.TrimSpace(rule))
	if m == nil {
		return specs.LinuxDeviceCgroup{}, errdefs.InvalidParameter(fmt.Errorf("invalid device cgroup format '%s'", rule))
	}
	r := specs.LinuxDeviceCgroup{Allow: true, Type: m[1], Access: m[4]}
	num := func(s string) *int64 {
		if s == "*" {
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil
		}
		return &n
	}
	r.Major, r.Minor = num(m[2]), num(m[3])
	return r, nil
}

// ValidateDevices checks --device and --device-cgroup-rule values at create, so a missing device is
// reported before anything is made.
func ValidateDevices(devs []Device, rules []string) error {
	if _, _, err := userDevices(devs); err != nil {
		return err
	}
	for _, r := range rules {
		if _, err := ParseDeviceCgroupRule(r); err != nil {
			return err
		}
	}
	return nil
}
