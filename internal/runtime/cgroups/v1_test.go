package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestModeHere(t *testing.T) {
	m := Mode()
	if m == Unavailable {
		t.Fatal("no cgroups detected")
	}
	t.Logf("mode %s", m)
}

// TestV1Real runs the whole lifecycle against the host's real v1 hierarchies.
func TestV1Real(t *testing.T) {
	testutil.RequireRoot(t)
	if Mode() == Unified {
		t.Skip("host is cgroup v2")
	}
	path := fmt.Sprintf("/berth-cgtest/%d", os.Getpid())
	m, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Kill()
		_ = m.Destroy()
		if parent, err := New("/berth-cgtest"); err == nil {
			_ = parent.Destroy()
		}
	})
	minor := int64(3)
	major := int64(1)
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0"},
		Pids:   &specs.LinuxPids{Limit: 20},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"},
		},
	}
	if err := m.Create(res); err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]string{
		{"memory", "memory.limit_in_bytes"}:       "67108864",
		{"memory", "memory.memsw.limit_in_bytes"}: "134217728",
		{"cpu", "cpu.cfs_quota_us"}:               "50000",
		{"cpu", "cpu.cfs_period_us"}:              "100000",
		{"cpu", "cpu.shares"}:                     "512",
		{"cpuset", "cpuset.cpus"}:                 "0",
		{"pids", "pids.max"}:                      "20",
		{"devices", "devices.list"}:               "c 1:3 rwm",
	}
	for k, v := range want {
		p := filepath.Join(m.Path(k[0]), k[1])
		if k[1] == "memory.memsw.limit_in_bytes" {
			if _, err := os.Stat(p); err != nil {
				continue // swap accounting off
			}
		}
		if got := readT(t, p); got != v {
			t.Errorf("%s = %q, want %q", p, got, v)
		}
	}
	// Shrinking memory below the old memsw and growing it past it both need the right write order.
	if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20)}}); err != nil {
		t.Fatal(err)
	}
	if got := readT(t, filepath.Join(m.Path("memory"), "memory.limit_in_bytes")); got != strconv.Itoa(256<<20) {
		t.Errorf("after growing: %s", got)
	}

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	procs, err := m.Procs()
	if err != nil || !slices.Contains(procs, cmd.Process.Pid) {
		t.Fatalf("procs %v, %v", procs, err)
	}
	st, err := m.Stats()
	if err != nil || st.PidsCurrent != 1 || st.PidsLimit != 20 || st.MemoryLimit != 256<<20 {
		t.Errorf("stats %+v, %v", st, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if got := readT(t, filepath.Join(m.Path("freezer"), "freezer.state")); got != "FROZEN" {
		t.Errorf("freezer.state %q", got)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if oom, err := m.OOMKilled(); err != nil || oom {
		t.Errorf("OOMKilled = %v, %v", oom, err)
	}
	if err := m.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("sleep ended with %v", cmd.ProcessState)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"memory", "cpu", "pids", "cpuset", "freezer"} {
		if _, err := os.Stat(m.Path(s)); !os.IsNotExist(err) {
			t.Errorf("%s dir left: %v", s, err)
		}
	}
}

func TestV1Mounts(t *testing.T) {
	if Mode() == Unified {
		t.Skip("host is cgroup v2")
	}
	ms, err := V1Mounts()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range ms {
		if slices.Contains(m.Subsystems, "memory") {
			found = true
		}
	}
	if !found {
		t.Errorf("memory hierarchy not found in %+v", ms)
	}
}
