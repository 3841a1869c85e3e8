package integration

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var execCommand = exec.Command

// TestDaemonKilledContainersSurvive kills berthd with SIGKILL while containers run and write logs, and
// checks after a restart that the running one kept running and logging, and that the one that exited
// meanwhile has its real exit code.
func TestDaemonKilledContainersSurvive(t *testing.T) {
	long, short := uniqueName(t)+"-long", uniqueName(t)+"-short"
	rmOnCleanup(t, long, short)
	mustDocker(t, "run", "-d", "--name", long, busybox, "sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done")
	mustDocker(t, "run", "-d", "--name", short, busybox, "sh", "-c", "sleep 1; echo bye; exit 7")
	pid, _ := strconv.Atoi(mustDocker(t, "inspect", "-f", "{{.State.Pid}}", long))
	if pid <= 0 {
		t.Fatalf("no pid")
	}

	stopDaemon(syscall.SIGKILL)
	time.Sleep(2 * time.Second) // the short one exits, the long one writes ~20 lines, with no daemon
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("container process died with the daemon: %v", err)
	}
	if err := startDaemon(); err != nil {
		t.Fatal(err)
	}

	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.Pid}}", long); st != "running "+strconv.Itoa(pid) {
		t.Errorf("long-running container after restart: %q", st)
	}
	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", short); st != "exited 7" {
		t.Errorf("container that exited while berthd was down: %q", st)
	}
	if out := mustDocker(t, "logs", short); out != "bye" {
		t.Errorf("logs of short: %q", out)
	}
	logs := strings.Fields(mustDocker(t, "logs", long))
	if len(logs) < 15 {
		t.Errorf("only %d log lines survived: %v", len(logs), logs)
	}
	for i, l := range logs {
		if l != "tick"+strconv.Itoa(i) {
			t.Fatalf("log line %d is %q: lines were lost or reordered", i, l)
		}
	}
	// and the restarted daemon still controls it
	mustDocker(t, "kill", long)
	if out := mustDocker(t, "wait", long); out != "137" {
		t.Errorf("wait after kill: %q", out)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	out, err := exec.Command(env.berthd, "--data-root", env.dataRoot, "--exec-root", env.execRoot+"-2",
		"-H", "unix://"+env.tmp+"/second.sock").CombinedOutput()
	if err == nil {
		t.Fatalf("second daemon on the same data root started: %s", out)
	}
	if !strings.Contains(string(out), "already using") {
		t.Errorf("refusal message: %s", out)
	}
}

func TestRuncRuntime(t *testing.T) {
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	// The same bundle our runtime runs, run by runc.
	r := docker(t, "run", "--rm", "--runtime", "runc", "-m", "32m", "-u", "berth", "--hostname", "viarunc", busybox,
		"sh", "-c", "id -u; hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
	if r.code != 0 || r.stdout != "1000\nviarunc\n33554432\n" {
		t.Fatalf("runc: %s", r)
	}
	r = docker(t, "run", "--rm", "--runtime", "runc", busybox, "sh", "-c", "exit 4")
	if r.code != 4 {
		t.Fatalf("runc exit code: %s", r)
	}
	r = docker(t, "run", "--rm", "--runtime", "nosuch", busybox, "true")
	if r.code != 125 || !strings.Contains(r.stderr, "unknown or invalid runtime name") {
		t.Fatalf("unknown runtime: %s", r)
	}
}
