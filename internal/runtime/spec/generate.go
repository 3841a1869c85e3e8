package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// cfsPeriod is the CFS period Docker uses when converting --cpus to a quota.
const cfsPeriod = 100000

// Generate builds the runtime spec for a container. Invalid input (an unknown user or capability, an
// impossible limit) is errdefs.InvalidParameter; nothing is written to disk.
func Generate(o Options) (*specs.Spec, error) {
	if !filepath.IsAbs(o.Rootfs) {
		return nil, errdefs.InvalidParameter(fmt.Errorf("rootfs must be an absolute path: %q", o.Rootfs))
	}
	if len(o.Args) == 0 {
		return nil, errdefs.InvalidParameter(fmt.Errorf("no command specified"))
	}
	uid, gid, groups, home, err := ResolveUser(o.Rootfs, o.User, o.GroupAdd)
	if err != nil {
		return nil, err
	}
	env := withDefaultEnv(o.Env, home)
	cwd := o.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return nil, errdefs.InvalidParameter(fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", cwd))
	}

	var caps []string
	if o.Privileged {
		if caps, err = HostCapabilities(); err != nil {
			return nil, errdefs.System(err)
		}
	} else if caps, err = capabilitySet(DefaultCapabilities, o.CapAdd, o.CapDrop); err != nil {
		return nil, err
	}

	rlimits, err := rlimits(o.Ulimits)
	if err != nil {
		return nil, err
	}
	res, err := resources(o.Resources)
	if err != nil {
		return nil, err
	}

	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: o.Tty,
			User:     specs.User{UID: uid, GID: gid, AdditionalGids: groups},
			Args:     append([]string(nil), o.Args...),
			Env:      env,
			Cwd:      cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: caps,
				Permitted: caps,
			},
			Rlimits:         rlimits,
			NoNewPrivileges: o.NoNewPrivileges,
		},
		Root:     &specs.Root{Path: o.Rootfs, Readonly: o.ReadonlyRootfs},
		Hostname: o.Hostname,
		Mounts:   mounts(o),
		Linux: &specs.Linux{
			CgroupsPath: o.CgroupsPath,
			Resources:   res,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.IPCNamespace}, {Type: specs.NetworkNamespace, Path: o.NetNSPath},
				{Type: specs.CgroupNamespace},
			},
		},
	}
	if len(o.UIDMappings) > 0 {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings, s.Linux.GIDMappings = o.UIDMappings, o.GIDMappings
	}
	if o.HostNetwork {
		ns := s.Linux.Namespaces[:0]
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.NetworkNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	}
	if o.Privileged {
		devs, err := hostDevices()
		if err != nil {
			return nil, errdefs.System(err)
		}
		s.Linux.Devices = devs
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		s.Linux.Devices = defaultDevices()
		s.Linux.Resources.Devices = defaultDeviceRules()
		s.Linux.MaskedPaths = append([]string(nil), DefaultMaskedPaths...)
		s.Linux.ReadonlyPaths = append([]string(nil), DefaultReadonlyPaths...)
		if o.MaskedPaths != nil {
			s.Linux.MaskedPaths = append([]string(nil), o.MaskedPaths...)
		}
		if o.ReadonlyPaths != nil {
			s.Linux.ReadonlyPaths = append([]string(nil), o.ReadonlyPaths...)
		}
	}
	devs, devRules, err := userDevices(o.Devices)
	if err != nil {
		return nil, err
	}
	s.Linux.Devices = append(s.Linux.Devices, devs...)
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, devRules...)
	for _, r := range o.DeviceCgroupRules {
		rule, err := ParseDeviceCgroupRule(r)
		if err != nil {
			return nil, err
		}
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rule)
	}
	if s.Linux.Seccomp, err = seccompProfile(o.Seccomp, o.Privileged, s); err != nil {
		return nil, err
	}
	return s, nil
}

// withDefaultEnv adds PATH and HOME when the caller's env lacks them, as Docker does.
func withDefaultEnv(env []string, home string) []string {
	out := append([]string(nil), env...)
	has := func(key string) bool {
		for _, kv := range out {
			if strings.HasPrefix(kv, key+"=") {
				return true
			}
		}
		return false
	}
	if !has("PATH") {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	if !has("HOME") {
		out = append(out, "HOME="+home)
	}
	return out
}

// mounts returns Docker's default mounts with the caller's on top; a caller's mount replaces a default
// one at the same destination (e.g. a bigger /dev/shm) and a mount below /dev replaces nothing.
func mounts(o Options) []specs.Mount {
	shm := o.ShmSize
	if shm <= 0 {
		shm = DefaultShmSize
	}
	user := map[string]bool{}
	for _, m := range o.Mounts {
		user[filepath.Clean(m.Destination)] = true
	}
	var out []specs.Mount
	for _, m := range defaultMounts(shm, o.Privileged) {
		if !user[m.Destination] {
			out = append(out, m)
		}
	}
	return append(out, o.Mounts...)
}

var rlimitNames = map[string]string{
	"core": "RLIMIT_CORE", "cpu": "RLIMIT_CPU", "data": "RLIMIT_DATA", "fsize": "RLIMIT_FSIZE",
	"locks": "RLIMIT_LOCKS", "memlock": "RLIMIT_MEMLOCK", "msgqueue": "RLIMIT_MSGQUEUE",
	"nice": "RLIMIT_NICE", "nofile": "RLIMIT_NOFILE", "nproc": "RLIMIT_NPROC", "rss": "RLIMIT_RSS",
	"rtprio": "RLIMIT_RTPRIO", "rttime": "RLIMIT_RTTIME", "sigpending": "RLIMIT_SIGPENDING",
	"stack": "RLIMIT_STACK", "as": "RLIMIT_AS",
}

// rlimits converts --ulimit entries; NOFILE defaults to the host's hard limit, never more, because
// without CAP_SYS_RESOURCE a higher value cannot be set and the start would fail.
func rlimits(ulimits []Ulimit) ([]specs.POSIXRlimit, error) {
	var out []specs.POSIXRlimit
	haveNofile := false
	for _, u := range ulimits {
		t, ok := rlimitNames[strings.ToLower(u.Name)]
		if !ok {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid ulimit type: %s", u.Name))
		}
		if u.Soft > u.Hard {
			return nil, errdefs.InvalidParameter(fmt.Errorf("ulimit soft limit must be less than or equal to hard limit: %d > %d", u.Soft, u.Hard))
		}
		if t == "RLIMIT_NOFILE" {
			haveNofile = true
		}
		out = append(out, specs.POSIXRlimit{Type: t, Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	if !haveNofile {
		var host unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &host); err != nil {
			return nil, errdefs.System(err)
		}
		n := host.Max
		if n > 1048576 {
			n = 1048576
		}
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: n, Hard: n})
	}
	return out, nil
}

// resources converts Docker's resource fields, applying Docker's defaults and its validation messages.
func resources(r Resources) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}
	if r.Memory != 0 || r.MemorySwap != 0 {
		if r.Memory < 0 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid memory limit: %d", r.Memory))
		}
		if r.Memory > 0 && r.Memory < 6*1024*1024 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("Minimum memory limit allowed is 6MB"))
		}
		if r.Memory == 0 && r.MemorySwap > 0 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("You should always set the Memory limit when using Memoryswap limit, see usage"))
		}
		mem := &specs.LinuxMemory{}
		if r.Memory > 0 {
			mem.Limit = int64p(r.Memory)
		}
		switch {
		case r.MemorySwap == -1:
			mem.Swap = int64p(-1)
		case r.MemorySwap > 0:
			if r.MemorySwap < r.Memory {
				return nil, errdefs.InvalidParameter(fmt.Errorf("Minimum memoryswap limit should be larger than memory limit, see usage"))
			}
			mem.Swap = int64p(r.MemorySwap)
		case r.Memory > 0:
			mem.Swap = int64p(2 * r.Memory)
		}
		out.Memory = mem
	}
	cpu := &specs.LinuxCPU{}
	useCPU := false
	if r.NanoCPUs != 0 {
		ncpu := int64(runtime.NumCPU())
		if r.NanoCPUs < 0 || r.NanoCPUs < 1e7 || r.NanoCPUs > ncpu*1e9 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", ncpu, ncpu))
		}
		period := uint64(cfsPeriod)
		cpu.Period = &period
		cpu.Quota = int64p(r.NanoCPUs * cfsPeriod / 1e9)
		useCPU = true
	}
	if r.CPUShares != 0 {
		if r.CPUShares < 0 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid CPU shares: %d", r.CPUShares))
		}
		shares := uint64(r.CPUShares)
		cpu.Shares = &shares
		useCPU = true
	}
	if r.CpusetCpus != "" || r.CpusetMems != "" {
		cpu.Cpus, cpu.Mems = r.CpusetCpus, r.CpusetMems
		useCPU = true
	}
	if useCPU {
		out.CPU = cpu
	}
	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		out.Pids = &specs.LinuxPids{Limit: *r.PidsLimit}
	}
	if r.BlkioWeight != 0 {
		if r.BlkioWeight < 10 || r.BlkioWeight > 1000 {
			return nil, errdefs.InvalidParameter(fmt.Errorf("Range of blkio weight is from 10 to 1000"))
		}
		w := r.BlkioWeight
		out.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return out, nil
}

// hostDevices lists the host's character and block devices for a privileged container, skipping the
// per-container instances (/dev/pts, /dev/shm, /dev/mqueue) and the console the container must not grab.
func hostDevices() ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil // a node that vanished while walking is not worth failing for
		}
		if d.IsDir() {
			switch p {
			case "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/.lxc", "/dev/.udev":
				return filepath.SkipDir
			}
			return nil
		}
		if p == "/dev/console" || p == "/dev/ptmx" {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return nil
		}
		var typ string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return nil
		}
		mode := os.FileMode(st.Mode & 0o777)
		uid, gid := st.Uid, st.Gid
		out = append(out, specs.LinuxDevice{
			Path: p, Type: typ, Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
			FileMode: &mode, UID: &uid, GID: &gid,
		})
		return nil
	})
	return out, err
}
