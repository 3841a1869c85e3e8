package monitor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/pkg/stdcopy"
)

// TestMain lets the test binary be the monitor process itself (for Ensure), as berthd is in production.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_MONITOR_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], shLauncher{}, nil))
	}
	os.Exit(m.Run())
}

// shLauncher runs bundle as a host shell command: the protocol does not care what a container is.
// A bundle "FAIL:<msg>" fails the launch with msg.
type shLauncher struct{}

func (shLauncher) Launch(ctx context.Context, id, bundle, runtime string, stdio Stdio) (Proc, error) {
	if msg, ok := strings.CutPrefix(bundle, "FAIL:"); ok {
		return nil, errors.New(msg)
	}
	cmd := exec.Command("/bin/sh", "-c", bundle)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return CmdProc(cmd), nil
}

// shortTempDir is a temp dir with a short path: socket paths must fit in sockaddr_un.
func shortTempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "bm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// startServer runs a monitor in this process. Cleanup kills every container it still runs, waits for
// their exits, and stops it.
func startServer(t *testing.T, l Launcher, opts ...func(*Options)) (*Client, string) {
	t.Helper()
	root := shortTempDir(t)
	o := Options{ExecRoot: root, Builtin: l, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, f := range opts {
		f(&o)
	}
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for _, st := range s.list() {
			if st.Status == StatusRunning {
				s.kill(st.ID, int(syscall.SIGKILL))
			}
		}
		for time.Now().Before(deadline) {
			running := false
			for _, st := range s.list() {
				running = running || st.Status == StatusRunning
			}
			if !running {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	for {
		c, err := Dial(ctx2, root)
		if err == nil {
			return c, root
		}
		if ctx2.Err() != nil {
			t.Fatalf("monitor did not come up: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readAttach demultiplexes everything the monitor sends until it closes the connection.
func readAttach(t *testing.T, conn net.Conn, timeout time.Duration) (stdout, stderr string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(timeout))
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, conn); err != nil {
		t.Fatalf("attach stream: %v (so far %q %q)", err, o.String(), e.String())
	}
	return o.String(), e.String()
}

func waitExit(t *testing.T, ch <-chan Exit, id string) Exit {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("events closed")
			}
			if e.ID == id {
				return e
			}
		case <-timeout:
			t.Fatalf("no exit event for %s", id)
		}
	}
}

func waitState(t *testing.T, c *Client, id, status string) State {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := c.State(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == status {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %s, want %s", id, st.Status, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }

func itoa(i int) string { return strconv.Itoa(i) }
