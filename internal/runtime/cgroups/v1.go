package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// V1Mount is one mounted cgroup v1 hierarchy.
type V1Mount struct {
	Mountpoint string
	// Subsystems are the mount's controller options, e.g. ["cpu", "cpuacct"] or ["name=systemd"].
	Subsystems []string
}

var v1Known = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true, "freezer": true,
	"blkio": true, "pids": true, "net_cls": true, "net_prio": true, "perf_event": true, "hugetlb": true,
	"rdma": true, "misc": true,
}

// V1Mounts lists the cgroup v1 hierarchies mounted in the caller's mount namespace, from
// /proc/self/mountinfo. The container init uses it to mount the same hierarchies inside the container.
func V1Mounts() ([]V1Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []V1Mount
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || qf[0] != "cgroup" {
			continue
		}
		var subs []string
		for _, o := range strings.Split(qf[2], ",") {
			if v1Known[o] || strings.HasPrefix(o, "name=") {
				subs = append(subs, o)
			}
		}
		key := strings.Join(subs, ",")
		if len(subs) == 0 || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, V1Mount{Mountpoint: unescapeMount(pf[4]), Subsystems: subs})
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// v1Hierarchies maps each subsystem name ("memory", "name=systemd") to its mount point.
func v1Hierarchies(c config) (map[string]string, error) {
	out := map[string]string{}
	if c.fake {
		ents, err := os.ReadDir(c.root)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.IsDir() {
				out[e.Name()] = filepath.Join(c.root, e.Name())
			}
		}
		return out, nil
	}
	mounts, err := V1Mounts()
	if err != nil {
		return nil, err
	}
	for _, m := range mounts {
		for _, s := range m.Subsystems {
			out[s] = m.Mountpoint
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup v1 hierarchy is mounted")
	}
	return out, nil
}

type v1Manager struct {
	path string
	// dirs maps every subsystem to the container's directory in its hierarchy; subsystems sharing a
	// hierarchy (cpu,cpuacct) share a directory.
	dirs map[string]string
	fake bool
}

func newV1(hier map[string]string, path string, fake bool) *v1Manager {
	m := &v1Manager{path: path, dirs: map[string]string{}, fake: fake}
	for s, mp := range hier {
		m.dirs[s] = filepath.Join(mp, path)
	}
	return m
}

// uniqueDirs lists each hierarchy's directory once, in a stable order.
func (m *v1Manager) uniqueDirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range m.dirs {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

func (m *v1Manager) Path(subsystem string) string { return m.dirs[subsystem] }

func (m *v1Manager) Create(res *specs.LinuxResources) error {
	for _, d := range m.uniqueDirs() {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	// A new cpuset is empty, and a task cannot join an empty one: fill every level from its parent.
	if d, ok := m.dirs["cpuset"]; ok {
		if err := m.fillCpuset(d); err != nil {
			return err
		}
	}
	if err := m.setDevices(res); err != nil {
		return err
	}
	return m.Update(res)
}

func (m *v1Manager) fillCpuset(dir string) error {
	mount := strings.TrimSuffix(dir, m.path)
	rel := strings.Split(strings.Trim(m.path, "/"), "/")
	cur := mount
	for _, p := range rel {
		parent := cur
		cur = filepath.Join(cur, p)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, _ := readString(cur, f)
			if v != "" {
				continue
			}
			pv, err := readString(parent, f)
			if err != nil && !m.fake {
				return err
			}
			if err := writeFile(cur, f, pv, m.fake); err != nil {
				return err
			}
		}
	}
	return nil
}

// setDevices writes the device allow-list. Rules are only set at creation: rewriting them on a running
// container would briefly deny access to devices it has open.
func (m *v1Manager) setDevices(res *specs.LinuxResources) error {
	d, ok := m.dirs["devices"]
	if !ok || res == nil || len(res.Devices) == 0 {
		return nil
	}
	for _, r := range res.Devices {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := writeFile(d, file, deviceRule(r), m.fake); err != nil {
			return err
		}
	}
	return nil
}

func deviceRule(r specs.LinuxDeviceCgroup) string {
	typ := r.Type
	if typ == "" {
		typ = "a"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	access := r.Access
	if access == "" {
		access = "rwm"
	}
	if typ == "a" {
		return "a"
	}
	return fmt.Sprintf("%s %s:%s %s", typ, num(r.Major), num(r.Minor), access)
}

func (m *v1Manager) Update(res *specs.LinuxResources) error {
	if res == nil {
		return nil
	}
	if res.Memory != nil {
		if err := m.setMemory(res.Memory); err != nil {
			return err
		}
	}
	if c := res.CPU; c != nil {
		d, ok := m.dirs["cpu"]
		if ok && c.Shares != nil && *c.Shares != 0 {
			if err := writeFile(d, "cpu.shares", strconv.FormatUint(*c.Shares, 10), m.fake); err != nil {
				return err
			}
		}
		if ok && c.Period != nil && *c.Period != 0 {
			if err := writeFile(d, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10), m.fake); err != nil {
				return err
			}
		}
		if ok && c.Quota != nil && *c.Quota != 0 {
			if err := writeFile(d, "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10), m.fake); err != nil {
				return err
			}
		}
		if d, ok := m.dirs["cpuset"]; ok {
			if c.Cpus != "" {
				if err := writeFile(d, "cpuset.cpus", c.Cpus, m.fake); err != nil {
					return err
				}
			}
			if c.Mems != "" {
				if err := writeFile(d, "cpuset.mems", c.Mems, m.fake); err != nil {
					return err
				}
			}
		}
	}
	if res.Pids != nil {
		if d, ok := m.dirs["pids"]; ok {
			v := "max"
			if res.Pids.Limit > 0 {
				v = strconv.FormatInt(res.Pids.Limit, 10)
			}
			if err := writeFile(d, "pids.max", v, m.fake); err != nil {
				return err
			}
		}
	}
	if res.BlockIO != nil && res.BlockIO.Weight != nil {
		if d, ok := m.dirs["blkio"]; ok {
			// Kernels with only the BFQ scheduler name the file blkio.bfq.weight; some have neither.
			for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
				if m.fake || exists(filepath.Join(d, f)) {
					if err := writeFile(d, f, strconv.FormatUint(uint64(*res.BlockIO.Weight), 10), m.fake); err != nil {
						return err
					}
					break
				}
			}
		}
	}
	return nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// setMemory writes memory and memory+swap limits. The kernel insists memsw >= memory at every moment,
// so the order depends on whether the limits grow or shrink: try one order, and on EINVAL the other.
func (m *v1Manager) setMemory(mem *specs.LinuxMemory) error {
	d, ok := m.dirs["memory"]
	if !ok {
		return nil
	}
	limit := func() error {
		if mem.Limit == nil {
			return nil
		}
		return writeFile(d, "memory.limit_in_bytes", strconv.FormatInt(*mem.Limit, 10), m.fake)
	}
	swap := func() error {
		if mem.Swap == nil || !(m.fake || exists(filepath.Join(d, "memory.memsw.limit_in_bytes"))) {
			return nil
		}
		return writeFile(d, "memory.memsw.limit_in_bytes", strconv.FormatInt(*mem.Swap, 10), m.fake)
	}
	if err := limit(); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		if err := swap(); err != nil {
			return err
		}
		return limit()
	}
	return swap()
}

func (m *v1Manager) Apply(pid int) error {
	for _, d := range m.uniqueDirs() {
		if err := writeFile(d, "cgroup.procs", strconv.Itoa(pid), m.fake); err != nil {
			return fmt.Errorf("join cgroup: %w", err)
		}
	}
	return nil
}

func (m *v1Manager) Stats() (*Stats, error) {
	s := &Stats{}
	if d, ok := m.dirs["memory"]; ok {
		s.MemoryUsage, _ = readUint(d, "memory.usage_in_bytes")
		s.MemoryMaxUsage, _ = readUint(d, "memory.max_usage_in_bytes")
		s.MemoryLimit, _ = readUint(d, "memory.limit_in_bytes")
		if st, err := readKeyed(d, "memory.stat"); err == nil {
			s.MemoryInactiveFile = st["total_inactive_file"]
		}
	}
	if d, ok := m.dirs["cpuacct"]; ok {
		s.CPUUsageNs, _ = readUint(d, "cpuacct.usage")
		if st, err := readKeyed(d, "cpuacct.stat"); err == nil {
			// cpuacct.stat counts USER_HZ ticks, which is 100 on every Linux ABI.
			s.CPUUserNs = st["user"] * 1e7
			s.CPUSystemNs = st["system"] * 1e7
		}
	}
	if d, ok := m.dirs["pids"]; ok {
		s.PidsCurrent, _ = readUint(d, "pids.current")
		s.PidsLimit, _ = readUint(d, "pids.max")
	}
	return s, nil
}

func (m *v1Manager) OOMKilled() (bool, error) {
	d, ok := m.dirs["memory"]
	if !ok {
		return false, nil
	}
	st, err := readKeyed(d, "memory.oom_control")
	if err != nil {
		return false, err
	}
	if n, ok := st["oom_kill"]; ok {
		return n > 0, nil
	}
	// Kernels before 4.13 have no oom_kill counter: hitting the limit is the best hint there is.
	if st["under_oom"] > 0 {
		return true, nil
	}
	fc, _ := readUint(d, "memory.failcnt")
	return fc > 0, nil
}

func (m *v1Manager) Freeze() error { return m.setFreezer("FROZEN") }

func (m *v1Manager) Thaw() error { return m.setFreezer("THAWED") }

func (m *v1Manager) setFreezer(state string) error {
	d, ok := m.dirs["freezer"]
	if !ok {
		return errors.New("freezer cgroup is not mounted")
	}
	for i := 0; i < 1000; i++ {
		// Writing again on every round matters: a fork racing the freeze can leave it in FREEZING.
		if err := writeFile(d, "freezer.state", state, m.fake); err != nil {
			return err
		}
		cur, err := readString(d, "freezer.state")
		if err != nil {
			if state == "THAWED" && cgroupGone(err) {
				return nil // thawed, a killed task died and its cgroup went: nothing is frozen
			}
			return err
		}
		if cur == state || m.fake {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("cgroup did not reach %s", state)
}

func (m *v1Manager) Procs() ([]int, error) {
	seen := map[int]bool{}
	var out []int
	var firstErr error
	for _, d := range m.uniqueDirs() {
		pids, err := readProcs(d)
		if err != nil {
			if firstErr == nil && !errors.Is(err, os.ErrNotExist) {
				firstErr = err
			}
			continue
		}
		for _, p := range pids {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Ints(out)
	return out, firstErr
}

func (m *v1Manager) Kill() error {
	// Freezing first stops a fork bomb from outrunning the kills; killed tasks die once thawed.
	frozen := m.Freeze() == nil
	pids, err := m.Procs()
	if err != nil {
		if frozen {
			_ = m.Thaw()
		}
		return err
	}
	for _, p := range pids {
		_ = unix.Kill(p, unix.SIGKILL)
	}
	if frozen {
		if err := m.Thaw(); err != nil {
			return err
		}
	}
	return killProcs(m.Procs)
}

func (m *v1Manager) Destroy() error {
	var firstErr error
	for _, d := range m.uniqueDirs() {
		if err := removeDir(d, m.fake); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}
