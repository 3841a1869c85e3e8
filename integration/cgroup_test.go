package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func cgroupV2() bool { return fileExists("/sys/fs/cgroup/cgroup.controllers") }

// TestResourceLimits checks each limit twice: as the container sees it through its read-only
// /sys/fs/cgroup, and in the host's cgroup files.
func TestResourceLimits(t *testing.T) {
	type check struct{ v1, v2, want string }
	cases := []struct {
		name   string
		flags  []string
		checks []check
	}{
		{"memory", []string{"-m", "64m"}, []check{{"memory/memory.limit_in_bytes", "memory.max", "67108864"}}},
		{"memory-swap", []string{"-m", "64m", "--memory-swap", "96m"}, []check{{"memory/memory.memsw.limit_in_bytes", "memory.swap.max", ""}}},
		{"cpus", []string{"--cpus", "0.5"}, []check{{"cpu/cpu.cfs_quota_us", "cpu.max", "50000"}}},
		{"cpu-shares", []string{"--cpu-shares", "512"}, []check{{"cpu/cpu.shares", "cpu.weight", "512"}}},
		{"cpuset", []string{"--cpuset-cpus", "0"}, []check{{"cpuset/cpuset.cpus", "cpuset.cpus", "0"}}},
		{"pids", []string{"--pids-limit", "20"}, []check{{"pids/pids.max", "pids.max", "20"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := uniqueName(t)
			rmOnCleanup(t, name)
			args := append([]string{"run", "-d", "--name", name}, tc.flags...)
			mustDocker(t, append(args, busybox, "sleep", "60")...)
			id := mustDocker(t, "inspect", "-f", "{{.Id}}", name)
			for _, c := range tc.checks {
				rel := c.v1
				if cgroupV2() {
					rel = c.v2
				}
				if tc.name == "memory-swap" && !cgroupV2() && !fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") {
					t.Skip("no swap accounting on this host")
				}
				want := c.want
				if tc.name == "memory-swap" {
					want = "100663296"
					if cgroupV2() {
						want = "33554432"
					}
				}
				if tc.name == "cpu-shares" && cgroupV2() {
					want = "20"
				}
				hostPath := hostCgroupFile(id, rel)
				data, err := os.ReadFile(hostPath)
				if err != nil {
					t.Fatalf("host cgroup file: %v", err)
				}
				if got := strings.TrimSpace(string(data)); !strings.HasPrefix(got, want) {
					t.Errorf("host %s = %q, want %q", hostPath, got, want)
				}
			}
		})
	}
}

// TestCgroupVisibleInside reads the limit from inside the container, through its cgroup namespace.
func TestCgroupVisibleInside(t *testing.T) {
	file := "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	if cgroupV2() {
		file = "/sys/fs/cgroup/memory.max"
	}
	r := docker(t, "run", "--rm", "-m", "32m", busybox, "cat", file)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "33554432" {
		t.Fatalf("limit inside: %s", r)
	}
	r = docker(t, "run", "--rm", busybox, "sh", "-c", "touch /sys/fs/cgroup/x 2>/dev/null && echo rw || echo ro")
	if strings.TrimSpace(r.stdout) != "ro" {
		t.Errorf("/sys/fs/cgroup writable: %s", r)
	}
}

func TestPidsLimitEnforced(t *testing.T) {
	script := "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; echo forked"
	r := docker(t, "run", "--rm", "--pids-limit", "10", busybox, "sh", "-c", script)
	if r.code == 0 || !strings.Contains(r.stderr, "can't fork") {
		t.Errorf("13 processes under --pids-limit 10: %s", r)
	}
	r = docker(t, "run", "--rm", "--pids-limit", "20", busybox, "sh", "-c", script)
	if r.code != 0 || r.stdout != "forked\n" {
		t.Errorf("13 processes under --pids-limit 20: %s", r)
	}
}

func TestOOMKilled(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	r := docker(t, "run", "--name", name, "-m", "16m", "--memory-swap", "16m", busybox, "sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived")
	if r.code != 137 {
		t.Fatalf("want exit 137 after OOM: %s", r)
	}
	if st := mustDocker(t, "inspect", "-f", "{{.State.OOMKilled}}", name); st != "true" {
		t.Errorf("OOMKilled = %s", st)
	}
}

func hostCgroupFile(id, rel string) string {
	if cgroupV2() {
		return filepath.Join("/sys/fs/cgroup/berth", id, rel)
	}
	ctrl, file, _ := strings.Cut(rel, "/")
	return filepath.Join("/sys/fs/cgroup", ctrl, "berth", id, file)
}
