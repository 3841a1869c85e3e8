package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func inspectF(t *testing.T, name, format string) string {
	t.Helper()
	return mustDocker(t, "inspect", "-f", format, name)
}

func restartCount(t *testing.T, name string) int {
	t.Helper()
	n, _ := strconv.Atoi(inspectF(t, name, "{{.RestartCount}}"))
	return n
}

// TestRestartPolicies runs each policy against a failing and a succeeding command.
func TestRestartPolicies(t *testing.T) {
	base := uniqueName(t)
	onFail, no, unless, success := base+"-onfail", base+"-no", base+"-unless", base+"-success"
	rmOnCleanup(t, onFail, no, unless, success)

	mustDocker(t, "run", "-d", "--name", onFail, "--restart", "on-failure:2", busybox, "sh", "-c", "echo run; exit 3")
	mustDocker(t, "run", "-d", "--name", no, "--restart", "no", busybox, "sh", "-c", "exit 3")
	mustDocker(t, "run", "-d", "--name", unless, "--restart", "unless-stopped", busybox, "sh", "-c", "sleep 0.2; exit 0")
	mustDocker(t, "run", "-d", "--name", success, "--restart", "on-failure", busybox, "true")

	// on-failure:2 runs three times in all, then stays down with the last exit code.
	waitFor(t, 10*time.Second, func() bool {
		return inspectF(t, onFail, "{{.RestartCount}} {{.State.Status}}") == "2 exited"
	})
	time.Sleep(700 * time.Millisecond)
	if st := inspectF(t, onFail, "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"); st != "2 exited 3" {
		t.Errorf("on-failure:2 after it gave up: %q", st)
	}
	if logs := strings.Fields(mustDocker(t, "logs", onFail)); len(logs) != 3 {
		t.Errorf("on-failure:2 ran %d times, want 3: %v", len(logs), logs)
	}
	if st := inspectF(t, no, "{{.RestartCount}} {{.State.Status}}"); st != "0 exited" {
		t.Errorf("no: %q", st)
	}
	if st := inspectF(t, success, "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}"); st != "0 exited 0" {
		t.Errorf("on-failure after success: %q", st)
	}
	waitFor(t, 10*time.Second, func() bool { return restartCount(t, unless) >= 2 })

	// stop ends the policy: nothing comes back.
	mustDocker(t, "stop", "-t", "1", unless)
	n := restartCount(t, unless)
	time.Sleep(1500 * time.Millisecond)
	if st := inspectF(t, unless, "{{.State.Status}}"); st != "exited" || restartCount(t, unless) != n {
		t.Errorf("unless-stopped came back after stop: %s, count %d -> %d", st, n, restartCount(t, unless))
	}
	// a start by the user resets the count.
	mustDocker(t, "start", unless)
	if c := restartCount(t, unless); c != 0 {
		t.Errorf("restart count after start: %d", c)
	}
	mustDocker(t, "stop", "-t", "1", unless)
}

// TestRestartBackoff checks Docker's doubling backoff: a container that exits at once restarts a
// handful of times in two seconds (100+200+400+800 ms), not dozens, and shows "restarting" between runs.
func TestRestartBackoff(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, "--restart", "always", busybox, "sh", "-c", "exit 1")
	sawRestarting := false
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		st := inspectF(t, name, "{{.State.Status}} {{.State.Restarting}}")
		if st == "restarting true" {
			sawRestarting = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	n := restartCount(t, name)
	if n < 3 || n > 6 {
		t.Errorf("%d restarts in 2s; with 100 ms doubling backoff there are 4 or 5", n)
	}
	if !sawRestarting {
		t.Errorf("never saw status restarting")
	}
	if out := mustDocker(t, "ps", "--filter", "name="+name, "--format", "{{.Status}}"); !strings.HasPrefix(out, "Restarting (1)") && !strings.HasPrefix(out, "Up") {
		t.Errorf("ps status: %q", out)
	}
	// stop of a container waiting for its restart cancels it.
	mustDocker(t, "stop", name)
	time.Sleep(1200 * time.Millisecond)
	if st := inspectF(t, name, "{{.State.Status}}"); st != "exited" {
		t.Errorf("after stop: %q", st)
	}
}

// TestUpdateRestartPolicy turns a policy on for a running container with update.
func TestUpdateRestartPolicy(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, busybox, "sh", "-c", "sleep 0.5; exit 5")
	if out := mustDocker(t, "update", "--restart", "on-failure:1", name); out != name {
		t.Errorf("update output: %q", out)
	}
	if p := inspectF(t, name, "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"); p != "on-failure:1" {
		t.Errorf("policy after update: %q", p)
	}
	waitFor(t, 10*time.Second, func() bool {
		return inspectF(t, name, "{{.RestartCount}} {{.State.Status}}") == "1 exited"
	})
}

// monitorPids finds this test daemon's monitor process.
func monitorPids(t *testing.T) []int {
	t.Helper()
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 2 && strings.Contains(args[0], "monitor") && strings.Contains(string(cmdline), env.execRoot) {
			out = append(out, pid)
		}
	}
	return out
}

// TestRestartPoliciesAfterReboot simulates a host reboot: berthd stops, the monitor and every container
// process are killed, berthd starts again. Containers whose policy wants them running come back (always
// even after a user stop, as in Docker); unless-stopped ones the user stopped and those without a
// policy stay down.
func TestRestartPoliciesAfterReboot(t *testing.T) {
	base := uniqueName(t)
	always, unless, unlessStopped, alwaysStopped, none, onFail := base+"-always", base+"-unless", base+"-unless-stopped", base+"-always-stopped", base+"-none", base+"-onfail"
	all := []string{always, unless, unlessStopped, alwaysStopped, none, onFail}
	rmOnCleanup(t, all...)
	mustDocker(t, "run", "-d", "--name", always, "--restart", "always", busybox, "sleep", "1000")
	mustDocker(t, "run", "-d", "--name", unless, "--restart", "unless-stopped", busybox, "sleep", "1000")
	mustDocker(t, "run", "-d", "--name", unlessStopped, "--restart", "unless-stopped", busybox, "sleep", "1000")
	mustDocker(t, "run", "-d", "--name", alwaysStopped, "--restart", "always", busybox, "sleep", "1000")
	mustDocker(t, "run", "-d", "--name", none, busybox, "sleep", "1000")
	mustDocker(t, "run", "-d", "--name", onFail, "--restart", "on-failure", busybox, "sleep", "1000")
	mustDocker(t, "stop", "-t", "1", unlessStopped, alwaysStopped)

	pids := map[string]int{}
	for _, n := range all {
		pids[n], _ = strconv.Atoi(inspectF(t, n, "{{.State.Pid}}"))
	}
	stopDaemon(syscall.SIGTERM)
	mons := monitorPids(t)
	if len(mons) == 0 {
		t.Fatal("monitor process not found")
	}
	for _, p := range mons {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	for _, p := range pids {
		if p > 0 {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if err := startDaemon(); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{always: "running", unless: "running", alwaysStopped: "running", onFail: "running", unlessStopped: "exited", none: "exited"}
	for n, st := range want {
		n, st := n, st
		waitFor(t, 10*time.Second, func() bool { return inspectF(t, n, "{{.State.Status}}") == st })
		if st == "running" {
			pid, _ := strconv.Atoi(inspectF(t, n, "{{.State.Pid}}"))
			if pid == pids[n] || syscall.Kill(pid, 0) != nil {
				t.Errorf("%s: pid %d after reboot (was %d) is not a live new process", n, pid, pids[n])
			}
		}
	}
	if code := inspectF(t, none, "{{.State.ExitCode}}"); code != "255" {
		t.Errorf("container lost in the reboot: exit code %s, want 255", code)
	}
	// The daemon still controls what it brought back.
	mustDocker(t, "stop", "-t", "1", always)
	if st := inspectF(t, always, "{{.State.Status}}"); st != "exited" {
		t.Errorf("stop after reboot: %q", st)
	}
}

// TestRestartPolicyAcrossDaemonRestart: a container that exits while berthd is down is restarted by its
// policy when berthd comes back; the restart count is kept in the record.
func TestRestartPolicyAcrossDaemonRestart(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, "--restart", "on-failure:5", busybox, "sh", "-c", "sleep 1; exit 4")
	waitFor(t, 10*time.Second, func() bool { return restartCount(t, name) >= 1 })
	stopDaemon(syscall.SIGKILL)
	time.Sleep(1500 * time.Millisecond) // the current run exits while berthd is away
	if err := startDaemon(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return restartCount(t, name) >= 2 })
	waitFor(t, 20*time.Second, func() bool {
		return inspectF(t, name, "{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}") == "5 exited 4"
	})
}
