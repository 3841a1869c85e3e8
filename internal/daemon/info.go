package daemon

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/system"
	"golang.org/x/sys/unix"
)

// systemInfo answers `docker info`.
type systemInfo struct {
	d *Daemon
}

func (s systemInfo) Info(ctx context.Context) (*system.Info, error) {
	d := s.d
	info := &system.Info{
		ID:                 d.id,
		Driver:             d.snapDriver,
		DriverStatus:       [][2]string{{"Backing Filesystem", backingFS(d.opts.DataRoot)}},
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      "1",
		KernelVersion:      kernelVersion(),
		OperatingSystem:    osName(),
		OSType:             "linux",
		Architecture:       arch(),
		NCPU:               runtime.NumCPU(),
		MemTotal:           memTotal(),
		DockerRootDir:      d.opts.DataRoot,
		Name:               hostname(),
		ServerVersion:      d.opts.Version,
		DefaultRuntime:     "berth",
		Runtimes:           map[string]system.RuntimeWithStatus{"berth": {}},
		IndexServerAddress: "https://index.docker.io/v1/",
		Labels:             []string{},
		Warnings:           []string{},
		MemoryLimit:        true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		OomKillDisable:     false,
		IPv4Forwarding:     true,
		Isolation:          "",
		InitBinary:         "",
		SecurityOptions:    []string{"name=seccomp,profile=builtin", "name=cgroupns"},
	}
	if cgroups.Mode() == cgroups.Unified {
		info.CgroupVersion = "2"
	}
	if d.remap != nil {
		info.SecurityOptions = append(info.SecurityOptions, "name=userns")
	}
	info.SwapLimit = fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") || info.CgroupVersion == "2"
	for name, path := range d.runtimes {
		info.Runtimes[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: path}}
	}
	info.ContainersRunning, info.ContainersPaused, info.ContainersStopped = d.containers.Counts()
	info.Containers = info.ContainersRunning + info.ContainersPaused + info.ContainersStopped
	if imgs, err := d.images.List(ctx, true, filters.NewArgs()); err == nil {
		info.Images = len(imgs)
	}
	info.Plugins.Volume = []string{"local"}
	info.Swarm = d.cluster.Info(ctx)
	return info, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func arch() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func osName() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

func backingFS(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return "unknown"
}

func goVersion() string { return runtime.Version() }
func goArch() string    { return runtime.GOARCH }
