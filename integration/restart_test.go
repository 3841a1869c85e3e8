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

// TestLiveRestoreSessions kills berthd with SIGKILL while an interactive session, a `logs -f` follower,
// a container cycling through its restart policy and a healthchecked container are all active. After
// the restart nothing is lost: the shell kept its state and takes a new attach, the log has every line
// written while berthd was away, the policy keeps restarting, and the healthcheck keeps probing.
func TestLiveRestoreSessions(t *testing.T) {
	base := uniqueName(t)
	shell, ticker, cycler, probed := base+"-it", base+"-tick", base+"-cycle", base+"-health"
	rmOnCleanup(t, shell, ticker, cycler, probed)

	sess := startPty(t, dockerCmd("run", "-it", "--name", shell, busybox, "sh"), 24, 80)
	sess.expect(0, "# ")
	sess.send("X=kept; echo ready$X\r")
	sess.expect(0, "readykept")

	mustDocker(t, "run", "-d", "--name", ticker, busybox, "sh", "-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.05; done")
	follow := dockerCmd("logs", "-f", ticker)
	var followed strings.Builder
	follow.Stdout = &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	followDone := make(chan error, 1)
	go func() { followDone <- follow.Wait() }()
	t.Cleanup(func() { _ = follow.Process.Kill() })

	mustDocker(t, "run", "-d", "--name", cycler, "--restart", "always", busybox, "sh", "-c", "sleep 0.2; exit 3")
	waitFor(t, 10*time.Second, func() bool { return restartCount(t, cycler) >= 1 })

	mustDocker(t, "run", "-d", "--name", probed, "--health-cmd", "true", "--health-interval", "100ms", busybox, "sleep", "1000")
	waitHealth(t, probed, "healthy")
	shellPid := mustDocker(t, "inspect", "-f", "{{.State.Pid}}", shell)

	stopDaemon(syscall.SIGKILL)
	killedAt := time.Now()
	select {
	case <-followDone:
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f kept running with berthd dead")
	}
	time.Sleep(time.Second)
	if err := startDaemon(); err != nil {
		t.Fatal(err)
	}

	// The shell is the same process, with its variable, and takes a new attach; detach leaves it running.
	if got := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.Pid}}", shell); got != "running "+shellPid {
		t.Fatalf("interactive container after restart: %q (pid was %s)", got, shellPid)
	}
	again := startPty(t, dockerCmd("attach", shell), 24, 80)
	time.Sleep(300 * time.Millisecond)
	again.send("echo again$X\r")
	again.expect(0, "againkept")
	again.send("\x10\x11")
	// The docker CLI's attach says "read escape sequence" on detach, with dockerd too.
	again.expect(0, "read escape sequence")
	again.wait()
	if st := inspectF(t, shell, "{{.State.Status}}"); st != "running" {
		t.Errorf("shell after detach: %s", st)
	}

	// Every tick, including those written while berthd was down, in order; the follower had a prefix.
	lines := strings.Fields(mustDocker(t, "logs", ticker))
	for i, l := range lines {
		if l != "tick"+strconv.Itoa(i) {
			t.Fatalf("log line %d is %q", i, l)
		}
	}
	if f := strings.Fields(followed.String()); len(f) == 0 || len(f) > len(lines) || f[len(f)-1] != lines[len(f)-1] {
		t.Errorf("follower saw %d lines, log has %d", len(f), len(lines))
	}
	if len(lines) < 20 {
		t.Errorf("only %d lines: the ticker stopped with berthd", len(lines))
	}

	// The policy still holds: restarts continue past the count berthd had before it died.
	before := restartCount(t, cycler)
	waitFor(t, 15*time.Second, func() bool { return restartCount(t, cycler) > before })

	waitFor(t, 10*time.Second, func() bool {
		h := healthOf(t, probed)
		return h != nil && h.Status == "healthy" && len(h.Log) > 0 && h.Log[len(h.Log)-1].Start.After(killedAt)
	})
}
