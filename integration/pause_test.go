package integration

import (
	"os"
	"strings"
	"testing"
	"time"
)

// logLines counts a container's log lines: the counter loops below print one line per tick.
func logLines(t *testing.T, name string) int {
	t.Helper()
	return len(strings.Fields(mustDocker(t, "logs", name)))
}

const counterLoop = "i=0; while true; do i=$((i+1)); echo $i; sleep 0.05; done"

// TestPauseFreezes pauses a container whose loop prints a counter and checks that the counter stops
// advancing, that the freezer says FROZEN, that ps and inspect show it paused, and that it resumes.
func TestPauseFreezes(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	id := mustDocker(t, "run", "-d", "--name", name, busybox, "sh", "-c", counterLoop)
	waitFor(t, 5*time.Second, func() bool { return logLines(t, name) > 3 })

	mustDocker(t, "pause", name)
	if cgroupV2() {
		if b, _ := os.ReadFile(hostCgroupFile(id, "cgroup.freeze")); strings.TrimSpace(string(b)) != "1" {
			t.Errorf("cgroup.freeze = %q", b)
		}
	} else if b, _ := os.ReadFile(hostCgroupFile(id, "freezer/freezer.state")); strings.TrimSpace(string(b)) != "FROZEN" {
		t.Errorf("freezer.state = %q", b)
	}
	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", name); st != "paused true true" {
		t.Errorf("inspect while paused: %q", st)
	}
	if st := mustDocker(t, "ps", "--filter", "name="+name, "--format", "{{.Status}}"); !strings.HasSuffix(st, "(Paused)") {
		t.Errorf("ps status: %q", st)
	}
	if out := mustDocker(t, "ps", "-q", "--filter", "status=paused", "--filter", "name="+name); out == "" {
		t.Errorf("status=paused filter did not find it")
	}
	n1 := logLines(t, name)
	time.Sleep(600 * time.Millisecond)
	if n2 := logLines(t, name); n2 != n1 {
		t.Fatalf("counter advanced while paused: %d -> %d", n1, n2)
	}

	r := docker(t, "pause", name)
	if r.code != 1 || !strings.Contains(r.stderr, "Container "+id+" is already paused") {
		t.Errorf("pause of a paused container: %s", r)
	}

	mustDocker(t, "unpause", name)
	waitFor(t, 5*time.Second, func() bool { return logLines(t, name) > n1+3 })
	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", name); st != "running false" {
		t.Errorf("inspect after unpause: %q", st)
	}
	r = docker(t, "unpause", name)
	if r.code != 1 || !strings.Contains(r.stderr, "Container "+id+" is not paused") {
		t.Errorf("unpause of a running container: %s", r)
	}

	// stop of a paused container thaws it so the signal lands.
	mustDocker(t, "pause", name)
	start := time.Now()
	mustDocker(t, "stop", "-t", "1", name)
	if time.Since(start) > 5*time.Second {
		t.Errorf("stop of a paused container took %v", time.Since(start))
	}
	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", name); st != "exited false" {
		t.Errorf("after stop: %q", st)
	}
	r = docker(t, "pause", name)
	if r.code != 1 || !strings.Contains(r.stderr, "Container "+id+" is not running") {
		t.Errorf("pause of a stopped container: %s", r)
	}
}

// TestKillAndRmPaused kills and force-removes paused containers, through the SDK and our CLI.
func TestKillAndRmPaused(t *testing.T) {
	a, b := uniqueName(t)+"-a", uniqueName(t)+"-b"
	rmOnCleanup(t, a, b)
	mustDocker(t, "run", "-d", "--name", a, busybox, "sleep", "1000")
	mustDocker(t, "run", "-d", "--name", b, busybox, "sleep", "1000")
	if r := berth(t, "pause", a, b); r.code != 0 || r.stdout != a+"\n"+b+"\n" {
		t.Fatalf("berth pause: %s", r)
	}
	mustDocker(t, "kill", a)
	if code := mustDocker(t, "wait", a); code != "137" {
		t.Errorf("wait after kill of paused: %s", code)
	}
	mustDocker(t, "rm", "-f", b)
	if r := docker(t, "inspect", b); r.code == 0 {
		t.Errorf("paused container survived rm -f")
	}
}
