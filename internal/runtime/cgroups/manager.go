package cgroups

import (
	"fmt"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager controls one container's cgroup in whichever layout the host has.
type Manager interface {
	// Create makes the cgroup (and any missing parents) and writes the limits in res (nil = none).
	Create(res *specs.LinuxResources) error
	// Apply moves pid (and, in v1, its threads) into the cgroup.
	Apply(pid int) error
	// Update writes new limits to an existing cgroup; fields left nil are not touched.
	Update(res *specs.LinuxResources) error
	// Stats reads current usage.
	Stats() (*Stats, error)
	// OOMKilled reports whether the kernel's OOM killer has killed anything in the cgroup.
	OOMKilled() (bool, error)
	// Freeze stops every process in the cgroup; it returns once they are frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// Procs lists the pids in the cgroup (as seen from the caller's pid namespace).
	Procs() ([]int, error)
	// Kill sends SIGKILL to every process in the cgroup; processes forking meanwhile are caught too.
	Kill() error
	// Destroy removes the cgroup, retrying briefly while exiting processes still hold it.
	Destroy() error
	// Path is the directory of subsystem ("memory", "cpu", ...; "" for v2's single directory).
	Path(subsystem string) string
}

// Stats is a snapshot of a cgroup's usage; zero where the host does not account for a value.
type Stats struct {
	MemoryUsage        uint64 // bytes, including page cache
	MemoryMaxUsage     uint64
	MemoryLimit        uint64 // bytes; the host's memory when unlimited is reported as a huge number
	MemoryInactiveFile uint64 // docker stats subtracts this from usage
	CPUUsageNs         uint64
	CPUUserNs          uint64
	CPUSystemNs        uint64
	PidsCurrent        uint64
	PidsLimit          uint64 // 0 = unlimited
}

// Option changes how New finds the cgroup filesystems.
type Option func(*config)

type config struct {
	root string
	mode CgroupMode
	fake bool
}

// WithRoot makes the manager use root instead of /sys/fs/cgroup, with the layout given by mode. For v1 each
// subdirectory of root is taken as the hierarchy of the controller it is named after. Files are created
// if missing, so tests can check the writes against a plain directory.
func WithRoot(root string, mode CgroupMode) Option {
	return func(c *config) { c.root, c.mode, c.fake = root, mode, true }
}

// New returns the manager for the cgroup at path (e.g. "/berth/<id>") without touching anything yet.
func New(path string, opts ...Option) (Manager, error) {
	c := config{root: DefaultRoot}
	for _, o := range opts {
		o(&c)
	}
	if !c.fake {
		c.mode = Mode()
	}
	if path == "" || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("cgroup path must be absolute: %q", path)
	}
	path = filepath.Clean(path)
	if path == "/" || strings.Contains(path, "..") {
		return nil, fmt.Errorf("invalid cgroup path %q", path)
	}
	switch c.mode {
	case Unified:
		return &v2Manager{root: c.root, path: path, dir: filepath.Join(c.root, path), fake: c.fake}, nil
	case Legacy, Hybrid:
		hier, err := v1Hierarchies(c)
		if err != nil {
			return nil, err
		}
		return newV1(hier, path, c.fake), nil
	}
	return nil, fmt.Errorf("no cgroup filesystem mounted at %s", c.root)
}
