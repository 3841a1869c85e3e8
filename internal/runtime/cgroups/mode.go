package cgroups

import (
	"os"

	"golang.org/x/sys/unix"
)

// CgroupMode says which cgroup layout the host uses.
type CgroupMode int

// The layouts. Hybrid is v1 controllers plus an (unused) cgroup2 tree at /sys/fs/cgroup/unified.
const (
	Unavailable CgroupMode = iota
	Legacy
	Hybrid
	Unified
)

// String names the mode as docker info does ("1" or "2" for the version).
func (m CgroupMode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return "unavailable"
}

// DefaultRoot is where the host mounts its cgroup filesystems.
const DefaultRoot = "/sys/fs/cgroup"

// Mode detects the host's cgroup layout.
func Mode() CgroupMode { return modeAt(DefaultRoot) }

func modeAt(root string) CgroupMode {
	if _, err := os.Stat(root + "/cgroup.controllers"); err == nil {
		return Unified
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return Unavailable
	}
	if err := unix.Statfs(root+"/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return Hybrid
	}
	return Legacy
}
