package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

type v2Manager struct {
	root, path, dir string
	fake            bool
}

// v2Controllers are the controllers a container's limits need, in the order they are enabled.
var v2Controllers = []string{"cpuset", "cpu", "io", "memory", "pids"}

func (m *v2Manager) Path(string) string { return m.dir }

func (m *v2Manager) Create(res *specs.LinuxResources) error {
	// Each level must delegate the controllers to its children before the child's files appear.
	rel := strings.Split(strings.Trim(m.path, "/"), "/")
	cur := m.root
	for _, p := range rel {
		if err := m.enableControllers(cur); err != nil {
			return err
		}
		cur = filepath.Join(cur, p)
		if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	if err := m.Update(res); err != nil {
		return err
	}
	// Device rules only at creation, as for v1: the program stays attached for the cgroup's life.
	if res != nil && len(res.Devices) > 0 && !m.fake {
		return attachDeviceFilter(m.dir, res.Devices)
	}
	return nil
}

func (m *v2Manager) enableControllers(dir string) error {
	avail, err := readString(dir, "cgroup.controllers")
	if err != nil && m.fake && errors.Is(err, os.ErrNotExist) {
		return nil // a plain test directory below the fake root has no controller list
	}
	if err != nil {
		return fmt.Errorf("read controllers of %s: %w", dir, err)
	}
	have := map[string]bool{}
	for _, c := range strings.Fields(avail) {
		have[c] = true
	}
	var want []string
	for _, c := range v2Controllers {
		if have[c] {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return nil
	}
	if err := writeFile(dir, "cgroup.subtree_control", strings.Join(want, " "), m.fake); err == nil {
		return nil
	}
	// One controller the parent cannot delegate (e.g. cpuset in a threaded subtree) must not cost the others.
	for _, c := range want {
		_ = writeFile(dir, "cgroup.subtree_control", c, m.fake)
	}
	return nil
}

// CPUSharesToWeight converts v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000) with the same
// formula as runc and crun, so a --cpu-shares value means the same on both layouts.
func CPUSharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// blkioWeightToIOWeight maps blkio.weight (10..1000) onto io.weight (1..10000).
func blkioWeightToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

func (m *v2Manager) write(name, value string) error { return writeFile(m.dir, name, value, m.fake) }

func (m *v2Manager) Update(res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	if mem := res.Memory; mem != nil {
		if mem.Limit != nil {
			v := "max"
			if *mem.Limit > 0 {
				v = strconv.FormatInt(*mem.Limit, 10)
			}
			if err := m.write("memory.max", v); err != nil {
				return err
			}
		}
		// v1's Swap is memory+swap; v2's swap.max is swap alone.
		if mem.Swap != nil && (m.fake || exists(filepath.Join(m.dir, "memory.swap.max"))) {
			v := "max"
			if *mem.Swap > 0 && mem.Limit != nil && *mem.Limit > 0 {
				sw := *mem.Swap - *mem.Limit
				if sw < 0 {
					return fmt.Errorf("memory+swap limit %d is below the memory limit %d", *mem.Swap, *mem.Limit)
				}
				v = strconv.FormatInt(sw, 10)
			}
			if err := m.write("memory.swap.max", v); err != nil {
				return err
			}
		}
	}
	if c := res.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			if err := m.write("cpu.weight", strconv.FormatUint(CPUSharesToWeight(*c.Shares), 10)); err != nil {
				return err
			}
		}
		if (c.Quota != nil && *c.Quota != 0) || (c.Period != nil && *c.Period != 0) {
			quota := "max"
			if c.Quota != nil && *c.Quota > 0 {
				quota = strconv.FormatInt(*c.Quota, 10)
			}
			period := uint64(100000)
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
			}
			if err := m.write("cpu.max", quota+" "+strconv.FormatUint(period, 10)); err != nil {
				return err
			}
		}
		if c.Cpus != "" {
			if err := m.write("cpuset.cpus", c.Cpus); err != nil {
				return err
			}
		}
		if c.Mems != "" {
			if err := m.write("cpuset.mems", c.Mems); err != nil {
				return err
			}
		}
	}
	if res.Pids != nil {
		v := "max"
		if res.Pids.Limit > 0 {
			v = strconv.FormatInt(res.Pids.Limit, 10)
		}
		if err := m.write("pids.max", v); err != nil {
			return err
		}
	}
	if res.BlockIO != nil && res.BlockIO.Weight != nil && *res.BlockIO.Weight != 0 {
		if m.fake || exists(filepath.Join(m.dir, "io.weight")) {
			if err := m.write("io.weight", "default "+strconv.FormatUint(blkioWeightToIOWeight(*res.BlockIO.Weight), 10)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *v2Manager) Apply(pid int) error {
	if err := m.write("cgroup.procs", strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("join cgroup: %w", err)
	}
	return nil
}

func (m *v2Manager) Stats() (*Stats, error) {
	s := &Stats{}
	s.MemoryUsage, _ = readUint(m.dir, "memory.current")
	s.MemoryMaxUsage, _ = readUint(m.dir, "memory.peak")
	s.MemoryLimit, _ = readUint(m.dir, "memory.max")
	if st, err := readKeyed(m.dir, "memory.stat"); err == nil {
		s.MemoryInactiveFile = st["inactive_file"]
	}
	if st, err := readKeyed(m.dir, "cpu.stat"); err == nil {
		s.CPUUsageNs = st["usage_usec"] * 1000
		s.CPUUserNs = st["user_usec"] * 1000
		s.CPUSystemNs = st["system_usec"] * 1000
	}
	s.PidsCurrent, _ = readUint(m.dir, "pids.current")
	s.PidsLimit, _ = readUint(m.dir, "pids.max")
	return s, nil
}

func (m *v2Manager) OOMKilled() (bool, error) {
	st, err := readKeyed(m.dir, "memory.events")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	return st["oom_kill"] > 0, nil
}

func (m *v2Manager) Freeze() error { return m.setFrozen("1") }

func (m *v2Manager) Thaw() error { return m.setFrozen("0") }

func (m *v2Manager) setFrozen(v string) error {
	if err := m.write("cgroup.freeze", v); err != nil {
		return err
	}
	if m.fake {
		return nil
	}
	for i := 0; i < 1000; i++ {
		ev, err := readKeyed(m.dir, "cgroup.events")
		if err != nil {
			if v == "0" && cgroupGone(err) {
				return nil // thawed, a killed task died and its cgroup went: nothing is frozen
			}
			return err
		}
		if strconv.FormatUint(ev["frozen"], 10) == v {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return errors.New("cgroup did not reach the requested freezer state")
}

func (m *v2Manager) Procs() ([]int, error) { return readProcs(m.dir) }

func (m *v2Manager) Kill() error {
	if exists(filepath.Join(m.dir, "cgroup.kill")) {
		if err := m.write("cgroup.kill", "1"); err != nil {
			return err
		}
		if m.fake {
			return nil
		}
	} else if m.Freeze() == nil {
		pids, _ := m.Procs()
		for _, p := range pids {
			_ = killPid(p)
		}
		_ = m.Thaw()
	}
	return killProcs(m.Procs)
}

func (m *v2Manager) Destroy() error { return removeDir(m.dir, m.fake) }

// cgroupGone reports whether err is what reading a cgroup file gives once the cgroup is removed, or is
// being removed.
func cgroupGone(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, fs.ErrNotExist)
}
