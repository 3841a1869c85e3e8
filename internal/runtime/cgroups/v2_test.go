package cgroups

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }

func readT(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestCPUSharesToWeight(t *testing.T) {
	for _, tc := range []struct{ shares, weight uint64 }{{0, 0}, {2, 1}, {1024, 39}, {512, 20}, {262144, 10000}} {
		if got := CPUSharesToWeight(tc.shares); got != tc.weight {
			t.Errorf("shares %d: weight %d, want %d", tc.shares, got, tc.weight)
		}
	}
}

// TestV2Writes checks every v2 file a container's limits touch, against a plain directory standing in
// for /sys/fs/cgroup.
func TestV2Writes(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpuset cpu io memory hugetlb pids rdma\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := New("/berth/abc", WithRoot(root, Unified))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "berth/abc")
	if m.Path("memory") != dir {
		t.Fatalf("path %q", m.Path("memory"))
	}
	res := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(96 << 20)},
		CPU:     &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Cpus: "0-1", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: 50},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(500)},
	}
	if err := m.Create(res); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"memory.max": "67108864", "memory.swap.max": "33554432", "cpu.max": "50000 100000",
		"cpu.weight": "39", "cpuset.cpus": "0-1", "cpuset.mems": "0", "pids.max": "50",
		"io.weight": "default 4950",
	}
	for f, v := range want {
		if got := readT(t, filepath.Join(dir, f)); got != v {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}
	if got := readT(t, filepath.Join(root, "cgroup.subtree_control")); got != "+cpuset +cpu +io +memory +pids" {
		t.Errorf("root subtree_control = %q", got)
	}
	// Unlimited values are written as "max".
	if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1)}, Pids: &specs.LinuxPids{}, CPU: &specs.LinuxCPU{Quota: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"memory.max": "max", "memory.swap.max": "max", "pids.max": "max", "cpu.max": "max 100000"} {
		if got := readT(t, filepath.Join(dir, f)); got != v {
			t.Errorf("after update %s = %q, want %q", f, got, v)
		}
	}
	if err := m.Apply(1234); err != nil {
		t.Fatal(err)
	}
	if got := readT(t, filepath.Join(dir, "cgroup.procs")); got != "1234" {
		t.Errorf("cgroup.procs = %q", got)
	}
	if oom, err := m.OOMKilled(); err != nil || oom {
		t.Errorf("OOMKilled before events = %v, %v", oom, err)
	}
	files := map[string]string{
		"memory.events":  "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
		"memory.current": "1000\n", "memory.peak": "2000\n", "memory.stat": "anon 10\ninactive_file 300\n",
		"cpu.stat":     "usage_usec 5\nuser_usec 3\nsystem_usec 2\n",
		"pids.current": "4\n",
	}
	for f, v := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if oom, err := m.OOMKilled(); err != nil || !oom {
		t.Errorf("OOMKilled = %v, %v", oom, err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	wantSt := Stats{MemoryUsage: 1000, MemoryMaxUsage: 2000, MemoryInactiveFile: 300, CPUUsageNs: 5000, CPUUserNs: 3000, CPUSystemNs: 2000, PidsCurrent: 4}
	if *st != wantSt {
		t.Errorf("stats %+v, want %+v", *st, wantSt)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if got := readT(t, filepath.Join(dir, "cgroup.freeze")); got != "1" {
		t.Errorf("cgroup.freeze = %q", got)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("dir still there: %v", err)
	}
}

func TestNewRejectsBadPaths(t *testing.T) {
	for _, p := range []string{"", "relative", "/", "/a/../.."} {
		if _, err := New(p, WithRoot(t.TempDir(), Unified)); err == nil {
			t.Errorf("New(%q) succeeded", p)
		}
	}
}
