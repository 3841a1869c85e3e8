package monitor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// monitorCmd re-executes the test binary as the monitor (see TestMain).
func monitorCmd(root string) func() *exec.Cmd {
	return func() *exec.Cmd {
		c := exec.Command(os.Args[0], "--exec-root", root)
		c.Env = append(os.Environ(), "BERTH_MONITOR_TEST_MAIN=1")
		return c
	}
}

var listeningPid = regexp.MustCompile(`monitor listening.* pid=(\d+)`)

// monitorPids reads the pids of the monitors that served root from its log.
func monitorPids(t *testing.T, root string) []int {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(root, "monitor.log"))
	var pids []int
	for _, m := range listeningPid.FindAllStringSubmatch(string(b), -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	return pids
}

func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// killMonitors kills every monitor process serving root that a test started, including one that lost
// the race for the lock but had not yet noticed when the winner was stopped.
func killMonitors(root string) {
	want := "--exec-root\x00" + root + "\x00"
	for i := 0; i < 3; i++ {
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			b, err := os.ReadFile(d + "/cmdline")
			if err != nil || !strings.Contains(string(b), want) {
				continue
			}
			if pid, err := strconv.Atoi(filepath.Base(d)); err == nil && pid != os.Getpid() {
				stopProcess(pid)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopProcess kills pid and, if it is (or became) our child, reaps it.
func stopProcess(pid int) {
	unix.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 200 && alive(pid); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, unix.WNOHANG, nil)
}

func TestEnsureMonitorOutlivesClient(t *testing.T) {
	root := shortTempDir(t)
	t.Cleanup(func() { killMonitors(root) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Ensure(ctx, root, monitorCmd(root))
	if err != nil {
		b, _ := os.ReadFile(filepath.Join(root, "monitor.log"))
		t.Fatalf("%v\n%s", err, b)
	}
	pids := monitorPids(t, root)
	if len(pids) != 1 {
		t.Fatalf("monitor pids %v", pids)
	}
	mon := pids[0]
	t.Cleanup(func() { stopProcess(mon) })
	if sid, _ := unix.Getsid(mon); sid != mon {
		t.Errorf("monitor is not a session leader: sid %d", sid)
	}
	if fi, err := os.Stat(SocketPath(root)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}

	// The client's context ends (a daemon shutting down): the monitor stays.
	cancel()
	time.Sleep(100 * time.Millisecond)
	if !alive(mon) {
		t.Fatal("monitor died with its client's context")
	}
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A second Ensure finds it rather than starting another.
	if _, err := Ensure(context.Background(), root, monitorCmd(root)); err != nil {
		t.Fatal(err)
	}
	if got := monitorPids(t, root); len(got) != 1 {
		t.Fatalf("second Ensure started another monitor: %v", got)
	}

	// A container survives the monitor being killed.
	bg := context.Background()
	if err := c.Create(bg, CreateOptions{ID: "survivor", Bundle: "exec sleep 100"}); err != nil {
		t.Fatal(err)
	}
	pid, err := c.Start(bg, "survivor")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(pid) })
	stopProcess(mon)
	time.Sleep(100 * time.Millisecond)
	if !alive(pid) {
		t.Fatal("container died with its monitor")
	}
	if _, err := os.Stat(filepath.Join(root, "containers/survivor/monitor.json")); err != nil {
		t.Fatal(err)
	}
	// And a new monitor can take over the exec root.
	if _, err := Ensure(bg, root, monitorCmd(root)); err != nil {
		t.Fatal(err)
	}
	pids = monitorPids(t, root)
	if len(pids) != 2 {
		t.Fatalf("monitor pids %v", pids)
	}
	t.Cleanup(func() { stopProcess(pids[1]) })
}

func TestEnsureRace(t *testing.T) {
	root := shortTempDir(t)
	t.Cleanup(func() { killMonitors(root) })
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		go func() {
			_, err := Ensure(context.Background(), root, monitorCmd(root))
			errs <- err
		}()
	}
	for i := 0; i < 3; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	pids := monitorPids(t, root)
	for _, p := range pids {
		t.Cleanup(func() { stopProcess(p) })
	}
	if len(pids) != 1 {
		t.Fatalf("%d monitors serve one exec root: %v", len(pids), pids)
	}
}
