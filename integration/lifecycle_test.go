package integration

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

func readCgroupUint(t *testing.T, id, rel string) uint64 {
	t.Helper()
	b, err := os.ReadFile(hostCgroupFile(id, rel))
	if err != nil {
		t.Fatalf("host cgroup file: %v", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %q", rel, b)
	}
	return n
}

// TestRestartCommand restarts a running and a stopped container: new process, same container.
func TestRestartCommand(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, busybox, "sh", "-c", "echo started; exec sleep 1000")
	pid1 := inspectF(t, name, "{{.State.Pid}}")
	start := time.Now()
	if out := mustDocker(t, "restart", "-t", "1", name); out != name {
		t.Errorf("restart output %q", out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("restart -t 1 took %v", d)
	}
	if st := inspectF(t, name, "{{.State.Status}} {{.RestartCount}}"); st != "running 0" {
		t.Errorf("after restart: %q", st)
	}
	if pid2 := inspectF(t, name, "{{.State.Pid}}"); pid2 == pid1 {
		t.Errorf("same pid after restart")
	}
	waitFor(t, 5*time.Second, func() bool { return mustDocker(t, "logs", name) == "started\nstarted" })
	mustDocker(t, "stop", "-t", "0", name)
	if r := berth(t, "restart", name); r.code != 0 {
		t.Fatalf("berth restart of a stopped container: %s", r)
	}
	if st := inspectF(t, name, "{{.State.Status}}"); st != "running" {
		t.Errorf("restart of a stopped container: %q", st)
	}
}

// TestTop lists the container's processes with the default and custom ps options.
func TestTop(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, busybox, "sh", "-c", "sleep 1001 & exec sleep 1002")
	waitFor(t, 5*time.Second, func() bool { return strings.Contains(mustDocker(t, "top", name), "sleep 1001") })
	out := mustDocker(t, "top", name)
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], "UID") || !strings.Contains(lines[0], "PID") || !strings.Contains(lines[0], "CMD") {
		t.Errorf("titles: %q", lines[0])
	}
	if len(lines) != 3 || !strings.Contains(out, "sleep 1002") {
		t.Errorf("top: %q", out)
	}
	pid := inspectF(t, name, "{{.State.Pid}}")
	out = mustDocker(t, "top", name, "-o", "pid,comm")
	if !strings.Contains(out, pid) || !strings.HasPrefix(out, "PID") || strings.Contains(out, "UID") {
		t.Errorf("top -o pid,comm: %q", out)
	}
	if r := berth(t, "top", name, "-o", "pid,args"); r.code != 0 || !strings.Contains(r.stdout, "sleep 1001") {
		t.Errorf("berth top: %s", r)
	}
	mustDocker(t, "stop", "-t", "0", name)
	if r := docker(t, "top", name); r.code == 0 || !strings.Contains(r.stderr, "is not running") {
		t.Errorf("top of a stopped container: %s", r)
	}
}

// TestStats compares docker stats --no-stream and the SDK's sample with the cgroup's own files.
func TestStats(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	id := mustDocker(t, "run", "-d", "--name", name, "-m", "64m", "--pids-limit", "50", busybox, "sh", "-c",
		"head -c 8000000 /dev/zero > /tmp/blob; sleep 1000 & while true; do :; done")
	time.Sleep(700 * time.Millisecond)

	out := mustDocker(t, "stats", "--no-stream", "--format", "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}|{{.NetIO}}", name)
	f := strings.Split(out, "|")
	if len(f) != 5 || f[0] != name {
		t.Fatalf("stats output %q", out)
	}
	cpu, _ := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
	if cpu < 30 {
		t.Errorf("CPU %% of a busy loop is %s", f[1])
	}
	if !strings.HasSuffix(f[2], " / 64MiB") {
		t.Errorf("memory limit: %q", f[2])
	}
	if f[3] != "2" {
		t.Errorf("PIDs %q, want 2 (sh and sleep)", f[3])
	}
	if f[4] != "0B / 0B" {
		t.Errorf("net I/O %q", f[4])
	}

	c := sdk(t)
	resp, err := c.ContainerStatsOneShot(ctxT(t, 10*time.Second), name)
	if err != nil {
		t.Fatal(err)
	}
	var st container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st.ID != id || st.Name != "/"+name {
		t.Errorf("id/name: %q %q", st.ID, st.Name)
	}
	if st.MemoryStats.Limit != 64<<20 {
		t.Errorf("memory limit %d", st.MemoryStats.Limit)
	}
	if st.PidsStats.Limit != 50 || st.PidsStats.Current < 2 {
		t.Errorf("pids %+v", st.PidsStats)
	}
	if st.CPUStats.SystemUsage == 0 || st.CPUStats.OnlineCPUs == 0 || st.CPUStats.CPUUsage.TotalUsage == 0 {
		t.Errorf("cpu stats %+v", st.CPUStats)
	}
	usageFile, cpuFile := "memory/memory.usage_in_bytes", "cpuacct/cpuacct.usage"
	if cgroupV2() {
		usageFile, cpuFile = "memory/memory.current", ""
	}
	if got := readCgroupUint(t, id, usageFile); absDiff(got, st.MemoryStats.Usage) > 4<<20 {
		t.Errorf("memory usage %d, cgroup says %d", st.MemoryStats.Usage, got)
	}
	if st.MemoryStats.Usage < 8000000 {
		t.Errorf("memory usage %d does not count the 8 MB file in tmpfs/page cache", st.MemoryStats.Usage)
	}
	if cpuFile != "" {
		if got := readCgroupUint(t, id, cpuFile); got < st.CPUStats.CPUUsage.TotalUsage {
			t.Errorf("cpu usage %d is ahead of the cgroup's %d", st.CPUStats.CPUUsage.TotalUsage, got)
		}
	}
	if r := berth(t, "stats", "--no-stream", name); r.code != 0 || !strings.Contains(r.stdout, "CONTAINER ID") || !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, "64MiB") {
		t.Errorf("berth stats: %s", r)
	}

	// A stopped container reports zeros, as in Docker.
	mustDocker(t, "stop", "-t", "0", name)
	if out := mustDocker(t, "stats", "--no-stream", "--format", "{{.CPUPerc}} {{.PIDs}}", name); out != "0.00% 0" {
		t.Errorf("stats of a stopped container: %q", out)
	}
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestStatsStream reads two samples of a stream: one second apart, the second with the first as "pre".
func TestStatsStream(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, busybox, "sleep", "1000")
	resp, err := sdk(t).ContainerStats(ctxT(t, 10*time.Second), name, true)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	var a, b container.StatsResponse
	if err := dec.Decode(&a); err != nil {
		t.Fatal(err)
	}
	if err := dec.Decode(&b); err != nil {
		t.Fatal(err)
	}
	if d := b.Read.Sub(a.Read); d < 800*time.Millisecond || d > 2*time.Second {
		t.Errorf("samples %v apart", d)
	}
	if !b.PreRead.Equal(a.Read) || b.PreCPUStats.SystemUsage != a.CPUStats.SystemUsage {
		t.Errorf("second sample's pre is not the first")
	}
}

// TestUpdateRunning changes a running container's limits and checks the cgroup files and the record.
func TestUpdateRunning(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	id := mustDocker(t, "run", "-d", "--name", name, "-m", "64m", busybox, "sleep", "1000")
	mustDocker(t, "update", "-m", "128m", "--memory-swap", "256m", "--pids-limit", "30", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", name)
	if cgroupV2() {
		for rel, want := range map[string]uint64{"memory.max": 128 << 20, "pids.max": 30, "cpu.weight": 20} {
			if got := readCgroupUint(t, id, rel); got != want {
				t.Errorf("%s = %d, want %d", rel, got, want)
			}
		}
	} else {
		for rel, want := range map[string]uint64{"memory/memory.limit_in_bytes": 128 << 20, "pids/pids.max": 30, "cpu/cpu.cfs_quota_us": 50000, "cpu/cpu.shares": 512, "cpuset/cpuset.cpus": 0} {
			if got := readCgroupUint(t, id, rel); got != want {
				t.Errorf("%s = %d, want %d", rel, got, want)
			}
		}
		if fileExists(hostCgroupFile(id, "memory/memory.memsw.limit_in_bytes")) {
			if got := readCgroupUint(t, id, "memory/memory.memsw.limit_in_bytes"); got != 256<<20 {
				t.Errorf("memsw = %d", got)
			}
		}
	}
	if hc := inspectF(t, name, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}}"); hc != "134217728 268435456 30 500000000 512" {
		t.Errorf("HostConfig after update: %q", hc)
	}
	// The new limits hold for the next start too.
	mustDocker(t, "restart", "-t", "0", name)
	if !cgroupV2() {
		if got := readCgroupUint(t, id, "memory/memory.limit_in_bytes"); got != 128<<20 {
			t.Errorf("memory limit after restart: %d", got)
		}
	}
	r := docker(t, "update", "-m", "1m", name)
	if r.code == 0 || !strings.Contains(r.stderr, "Minimum memory limit allowed is 6MB") {
		t.Errorf("update below the minimum: %s", r)
	}
	if r := berth(t, "update", "--pids-limit", "40", name); r.code != 0 || strings.TrimSpace(r.stdout) != name {
		t.Errorf("berth update: %s", r)
	}
	if got := inspectF(t, name, "{{.HostConfig.PidsLimit}}"); got != "40" {
		t.Errorf("pids after berth update: %s", got)
	}
}

// TestPort: without networking no port is published; the command exists and answers like docker.
func TestPort(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, busybox, "sleep", "1000")
	if r := docker(t, "port", name); r.code != 0 || r.stdout != "" {
		t.Errorf("docker port: %s", r)
	}
	if r := berth(t, "port", name); r.code != 0 || r.stdout != "" {
		t.Errorf("berth port: %s", r)
	}
	if r := berth(t, "port", name, "80"); r.code == 0 || !strings.Contains(r.stderr, "No public port '80/tcp' published for "+name) {
		t.Errorf("berth port 80: %s", r)
	}
}

// TestStopSignalAndTimeout checks --stop-signal reaches the process and --stop-timeout bounds the wait.
func TestStopSignalAndTimeout(t *testing.T) {
	sig, slow := uniqueName(t)+"-sig", uniqueName(t)+"-slow"
	rmOnCleanup(t, sig, slow)
	mustDocker(t, "run", "-d", "--name", sig, "--stop-signal", "USR1", busybox, "sh", "-c",
		"trap 'echo got usr1; exit 7' USR1; echo ready; while true; do sleep 0.1; done")
	waitFor(t, 5*time.Second, func() bool { return mustDocker(t, "logs", sig) == "ready" })
	mustDocker(t, "stop", sig)
	if st := inspectF(t, sig, "{{.State.ExitCode}}"); st != "7" {
		t.Errorf("exit code after stop with USR1: %s", st)
	}
	if logs := mustDocker(t, "logs", sig); !strings.Contains(logs, "got usr1") {
		t.Errorf("logs: %q", logs)
	}

	mustDocker(t, "run", "-d", "--name", slow, "--stop-timeout", "1", busybox, "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
	start := time.Now()
	mustDocker(t, "stop", slow)
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Errorf("stop with --stop-timeout 1 took %v", d)
	}
	if st := inspectF(t, slow, "{{.State.ExitCode}} {{.Config.StopTimeout}}"); st != "137 1" {
		t.Errorf("after stop: %q", st)
	}
}

// TestAttachStoppedOrPaused: both CLIs refuse to attach to a container that is not running, with
// Docker's words and exit code.
func TestAttachStoppedOrPaused(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "create", "--name", name, busybox, "sleep", "1000")
	for _, r := range []result{docker(t, "attach", name), berth(t, "attach", name)} {
		if r.code != 1 || !strings.Contains(r.stderr, "You cannot attach to a stopped container, start it first") {
			t.Errorf("attach to a stopped container: %s", r)
		}
	}
	mustDocker(t, "start", name)
	mustDocker(t, "pause", name)
	defer func() { _ = dockerCmd("unpause", name).Run() }()
	for _, r := range []result{docker(t, "attach", name), berth(t, "attach", name)} {
		if r.code != 1 || !strings.Contains(r.stderr, "You cannot attach to a paused container, unpause it first") {
			t.Errorf("attach to a paused container: %s", r)
		}
	}
}

// TestInit: --init puts a minimal init in front of the command as PID 1, which reaps orphans, passes
// signals on (so a plain `sleep` stops at once) and exits with the command's status.
func TestInit(t *testing.T) {
	r := docker(t, "run", "--rm", "--init", busybox, "sh", "-c", `tr '\0' ' ' </proc/1/cmdline; echo; echo $$`)
	lines := strings.Split(r.stdout, "\n")
	if r.code != 0 || len(lines) < 2 || lines[0] != "/sbin/docker-init -- sh -c tr '\\0' ' ' </proc/1/cmdline; echo; echo $$ " || lines[1] == "1" {
		t.Errorf("pid 1 with --init: %s", r)
	}
	// An orphan re-parented to PID 1 is reaped: no zombie is left.
	r = docker(t, "run", "--rm", "--init", busybox, "sh", "-c", "(sleep 0.1 &); sleep 0.6; ps -o stat | grep -c Z")
	if strings.TrimSpace(r.stdout) != "0" {
		t.Errorf("zombies with --init: %s", r)
	}
	if r := docker(t, "run", "--rm", "--init", busybox, "sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exit status through the init: %s", r)
	}
	if r := docker(t, "run", "--rm", "--init", busybox, "sh", "-c", "kill -9 $$"); r.code != 137 {
		t.Errorf("killed command through the init: %s", r)
	}
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--init", "--name", name, busybox, "sleep", "1000")
	start := time.Now()
	mustDocker(t, "stop", "-t", "10", name)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v: SIGTERM did not reach sleep", d)
	}
	if code := inspectF(t, name, "{{.State.ExitCode}}"); code != "143" {
		t.Errorf("exit code after stop: %s", code)
	}
	if got := inspectF(t, name, "{{.HostConfig.Init}} {{.Path}}"); got != "true sleep" {
		t.Errorf("inspect: %s", got)
	}
	// On a terminal the shell behind the init is in the foreground: it reads input and ^C reaches it.
	s := startPty(t, dockerCmd("run", "-it", "--rm", "--init", busybox, "sh"), 24, 80)
	s.expect(0, "# ")
	s.send("sleep 30\r")
	time.Sleep(300 * time.Millisecond)
	s.send("\x03")
	s.send("echo back$((1+1))\r")
	s.expect(0, "back2")
	s.send("exit 4\r")
	if code := s.wait(); code != 4 {
		t.Errorf("run -it --init exit %d: %q", code, s.output())
	}
}
