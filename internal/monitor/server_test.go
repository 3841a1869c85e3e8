package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

type logLine struct {
	Log, Stream string
	Time        time.Time
}

func readLog(t *testing.T, path string) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

func TestOutputLogAttachAndExit(t *testing.T) {
	c, root := startServer(t, shLauncher{})
	ctx := testCtx(t)
	logPath := filepath.Join(root, "c1-json.log")
	// The very first bytes are written before the process could know anyone listens.
	if err := c.Create(ctx, CreateOptions{ID: "c1", Bundle: "echo first; echo oops >&2; echo second; exit 3", LogPath: logPath}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(ctx, "c1"); err != nil || st.Status != StatusCreated {
		t.Fatalf("state after create: %+v %v", st, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "containers/c1/attach.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("attach socket: %v %v", fi, err)
	}
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	both, err := c.Attach(ctx, "c1", false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer both.Close()
	onlyErr, err := c.Attach(ctx, "c1", false, false, true)
	if err != nil {
		t.Fatal(err)
	}
	defer onlyErr.Close()

	pid, err := c.Start(ctx, "c1")
	if err != nil || pid <= 0 {
		t.Fatalf("start: %d %v", pid, err)
	}
	out, errs := readAttach(t, both, 10*time.Second)
	if out != "first\nsecond\n" || errs != "oops\n" {
		t.Fatalf("attach got %q %q", out, errs)
	}
	if out, errs := readAttach(t, onlyErr, 10*time.Second); out != "" || errs != "oops\n" {
		t.Fatalf("stderr-only attach got %q %q", out, errs)
	}
	e := waitExit(t, events, "c1")
	if e.ExitCode != 3 || e.Signal != 0 || e.FinishedAt.IsZero() {
		t.Fatalf("exit event %+v", e)
	}
	st, err := c.State(ctx, "c1")
	if err != nil || st.Status != StatusExited || st.ExitCode != 3 || st.Pid != pid || st.StartedAt.After(st.FinishedAt) {
		t.Fatalf("state after exit: %+v %v", st, err)
	}
	// The exit is reported only after the output is in the log.
	// Each stream is in order; across streams the order is whatever the pipes delivered.
	byStream := map[string]string{}
	for _, l := range readLog(t, logPath) {
		byStream[l.Stream] += l.Log
	}
	if byStream["stdout"] != "first\nsecond\n" || byStream["stderr"] != "oops\n" {
		t.Fatalf("log: %q", byStream)
	}
	var rec record
	b, err := os.ReadFile(filepath.Join(root, "containers/c1/monitor.json"))
	if err != nil || json.Unmarshal(b, &rec) != nil || rec.Pid != pid || rec.LogPath != logPath || rec.Status != StatusExited {
		t.Fatalf("monitor.json: %s %v", b, err)
	}
}

func TestStdinThroughAttach(t *testing.T) {
	c, _ := startServer(t, shLauncher{})
	ctx := testCtx(t)
	if err := c.Create(ctx, CreateOptions{ID: "cat", Bundle: "cat; echo done", OpenStdin: true, StdinOnce: true}); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Attach(ctx, "cat", true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Written before start: it waits in the pipe, as `echo hi | docker start -ai` needs.
	if _, err := conn.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "cat"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("world\n")); err != nil {
		t.Fatal(err)
	}
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	out, _ := readAttach(t, conn, 10*time.Second)
	if out != "hello\nworld\ndone\n" {
		t.Fatalf("got %q", out)
	}
	if st := waitState(t, c, "cat", StatusExited); st.ExitCode != 0 {
		t.Fatalf("%+v", st)
	}
}

func TestStdinNotOnceStaysOpen(t *testing.T) {
	c, _ := startServer(t, shLauncher{})
	ctx := testCtx(t)
	if err := c.Create(ctx, CreateOptions{ID: "c", Bundle: "read a; read b; echo $a$b", OpenStdin: true}); err != nil {
		t.Fatal(err)
	}
	first, err := c.Attach(ctx, "c", true, true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := c.Start(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	first.Write([]byte("x\n"))
	first.(*net.UnixConn).CloseWrite() // without stdinOnce this must not end the container's stdin
	second, err := c.Attach(ctx, "c", true, true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.Write([]byte("y\n"))
	if out, _ := readAttach(t, second, 10*time.Second); out != "xy\n" {
		t.Fatalf("got %q", out)
	}
}

func TestEventsKeptWhileNoSubscriber(t *testing.T) {
	c, _ := startServer(t, shLauncher{})
	ctx := testCtx(t)
	for _, id := range []string{"a", "b"} {
		if err := c.Create(ctx, CreateOptions{ID: id, Bundle: "exit 7"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	waitState(t, c, "a", StatusExited)
	waitState(t, c, "b", StatusExited)
	// A daemon coming back subscribes, then lists to learn what it missed.
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	for _, st := range list {
		if st.Status != StatusExited || st.ExitCode != 7 {
			t.Fatalf("%+v", st)
		}
	}
	// And an exit after subscribing arrives as an event, to every subscriber.
	events2, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, events, "a"); e.ExitCode != 7 {
		t.Fatalf("%+v", e)
	}
	if e := waitExit(t, events2, "a"); e.ExitCode != 7 {
		t.Fatalf("%+v", e)
	}
}

func TestSlowAttachClientDoesNotBlock(t *testing.T) {
	c, root := startServer(t, shLauncher{})
	ctx := testCtx(t)
	logPath := filepath.Join(root, "big.log")
	const n = 4 << 20
	if err := c.Create(ctx, CreateOptions{ID: "big", Bundle: "head -c 4194304 /dev/zero | tr '\\0' a", LogPath: logPath}); err != nil {
		t.Fatal(err)
	}
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stuck, err := c.Attach(ctx, "big", false, true, true) // never read
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	start := time.Now()
	if _, err := c.Start(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, events, "big"); e.ExitCode != 0 {
		t.Fatalf("%+v", e)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v", d)
	}
	total := 0
	for _, l := range readLog(t, logPath) {
		total += len(l.Log)
	}
	if total != n {
		t.Fatalf("log has %d bytes, want %d", total, n)
	}
}

func TestKill(t *testing.T) {
	c, _ := startServer(t, shLauncher{})
	ctx := testCtx(t)
	if err := c.Create(ctx, CreateOptions{ID: "s", Bundle: "exec sleep 100"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx, "s", syscall.SIGTERM); !errdefs.IsConflict(err) || err.Error() != "container not running" {
		t.Fatalf("kill before start: %v", err)
	}
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := c.Start(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if sid, _ := unix.Getsid(pid); sid != pid {
		t.Errorf("container is not in its own session: sid %d pid %d", sid, pid)
	}
	if _, err := c.Start(ctx, "s"); !errdefs.IsNotModified(err) {
		t.Fatalf("second start: %v", err)
	}
	if err := c.Delete(ctx, "s"); !errdefs.IsConflict(err) {
		t.Fatalf("delete running: %v", err)
	}
	if err := c.Kill(ctx, "s", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	e := waitExit(t, events, "s")
	if e.Signal != int(syscall.SIGTERM) || e.ExitCode != 128+int(syscall.SIGTERM) {
		t.Fatalf("%+v", e)
	}
	if err := c.Kill(ctx, "s", syscall.SIGTERM); !errdefs.IsConflict(err) {
		t.Fatalf("kill after exit: %v", err)
	}
	if err := c.Kill(ctx, "nope", syscall.SIGTERM); !errdefs.IsNotFound(err) || err.Error() != "No such container: nope" {
		t.Fatalf("kill unknown: %v", err)
	}
}

func TestRestartAndDelete(t *testing.T) {
	c, root := startServer(t, shLauncher{})
	ctx := testCtx(t)
	logPath := filepath.Join(root, "r.log")
	if err := c.Create(ctx, CreateOptions{ID: "r", Bundle: "echo run", LogPath: logPath}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, CreateOptions{ID: "r", Bundle: "true"}); !errdefs.IsConflict(err) {
		t.Fatalf("duplicate create: %v", err)
	}
	for i := 0; i < 2; i++ {
		conn, err := c.Attach(ctx, "r", false, true, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Start(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		if out, _ := readAttach(t, conn, 10*time.Second); out != "run\n" {
			t.Fatalf("run %d: %q", i, out)
		}
		conn.Close()
		waitState(t, c, "r", StatusExited)
	}
	if n := len(readLog(t, logPath)); n != 2 {
		t.Fatalf("log has %d lines after two runs", n)
	}
	if err := c.Delete(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "containers/r")); !os.IsNotExist(err) {
		t.Fatalf("container dir left: %v", err)
	}
	if _, err := c.State(ctx, "r"); !errdefs.IsNotFound(err) {
		t.Fatalf("state after delete: %v", err)
	}
	if _, err := c.Attach(ctx, "r", false, true, true); !errdefs.IsNotFound(err) {
		t.Fatalf("attach after delete: %v", err)
	}
}

func TestStartErrorReachesClient(t *testing.T) {
	c, _ := startServer(t, shLauncher{})
	ctx := testCtx(t)
	msg := `exec: "nope": executable file not found in $PATH`
	if err := c.Create(ctx, CreateOptions{ID: "f", Bundle: "FAIL:" + msg}); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Attach(ctx, "f", false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.Start(ctx, "f"); err == nil || err.Error() != msg {
		t.Fatalf("got %v, want %q", err, msg)
	}
	// The failed run ends its attach clients, and the container can be tried again.
	readAttach(t, conn, 5*time.Second)
	if st, _ := c.State(ctx, "f"); st.Status != StatusCreated {
		t.Fatalf("%+v", st)
	}
	if _, err := c.Start(ctx, "f"); err == nil || err.Error() != msg {
		t.Fatalf("second try: %v", err)
	}
	if err := c.Create(ctx, CreateOptions{ID: "../x", Bundle: "true"}); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("bad id: %v", err)
	}
}

func TestLongIDSocketPath(t *testing.T) {
	c, root := startServer(t, shLauncher{})
	ctx := testCtx(t)
	id := strings.Repeat("ab", 32) + strings.Repeat("c", 40) // too long for sockaddr_un under any root
	if len(filepath.Join(root, "containers", id, "attach.sock")) < maxSunPath {
		t.Fatal("path not long enough to test")
	}
	if err := c.Create(ctx, CreateOptions{ID: id, Bundle: "echo long"}); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Attach(ctx, id, false, true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if out, _ := readAttach(t, conn, 10*time.Second); out != "long\n" {
		t.Fatalf("%q", out)
	}
}

func TestOrphansAreReaped(t *testing.T) {
	c, _ := startServer(t, shLauncher{})
	ctx := testCtx(t)
	// The shell leaves a background child that outlives it; with no pid namespace it is reparented to the
	// monitor (a subreaper), which must reap it.
	if err := c.Create(ctx, CreateOptions{ID: "o", Bundle: "sleep 0.2 >/dev/null 2>&1 & echo $!"}); err != nil {
		t.Fatal(err)
	}
	conn, err := c.Attach(ctx, "o", false, true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.Start(ctx, "o"); err != nil {
		t.Fatal(err)
	}
	out, _ := readAttach(t, conn, 10*time.Second)
	var pid int
	if _, err := fmtSscan(out, &pid); err != nil {
		t.Fatalf("%q: %v", out, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + itoa(pid)); os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile("/proc/" + itoa(pid) + "/stat")
			t.Fatalf("orphan %d not reaped: %s", pid, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClientContextCancel(t *testing.T) {
	c, _ := startServer(t, shLauncher{})
	ctx, cancel := context.WithCancel(context.Background())
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case _, ok := <-events:
		if ok {
			t.Fatal("unexpected event")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("events channel not closed after cancel")
	}
}
