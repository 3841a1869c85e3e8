package monitor

import (
	"context"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/testutil"
)

// hostExecer runs an exec's args as a host command: the protocol does not care where it runs.
type hostExecer struct{}

func (hostExecer) Exec(ctx context.Context, o ExecLaunch) (Proc, error) {
	cmd := exec.Command(o.Process.Args[0], o.Process.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdio.Stdin, o.Stdio.Stdout, o.Stdio.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: o.Process.Terminal}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return CmdProc(cmd), nil
}

func withHostExecer(o *Options) { o.Execer = hostExecer{} }

func startSleeper(t *testing.T, c *Client, id string) {
	t.Helper()
	ctx := testCtx(t)
	if err := c.Create(ctx, CreateOptions{ID: id, Bundle: "exec sleep 100"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func sh(script string) *specs.Process { return &specs.Process{Args: []string{"/bin/sh", "-c", script}} }

func TestExecAttached(t *testing.T) {
	c, _ := startServer(t, shLauncher{}, withHostExecer)
	ctx := testCtx(t)
	startSleeper(t, c, "e1")
	st, conn, err := c.Exec(ctx, ExecOptions{ID: "e1", ExecID: "x1", OpenStdin: true,
		Process: sh("echo out; echo err >&2; read x; echo in=$x; exit 3"),
		Attach:  &AttachOptions{Stdin: true, Stdout: true, Stderr: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if st.Pid <= 0 || !st.Running {
		t.Fatalf("%+v", st)
	}
	conn.Write([]byte("abc\n"))
	conn.(interface{ CloseWrite() error }).CloseWrite()
	out, errOut := readAttach(t, conn, 10*time.Second)
	if out != "out\nin=abc\n" || errOut != "err\n" {
		t.Fatalf("got %q %q", out, errOut)
	}
	// The stream ends only after the exit is recorded.
	st, err = c.ExecState(ctx, "e1", "x1")
	if err != nil || st.Running || st.ExitCode != 3 {
		t.Fatalf("%+v %v", st, err)
	}
	if _, err := c.ExecState(ctx, "e1", "nope"); !errdefs.IsNotFound(err) {
		t.Fatalf("unknown exec: %v", err)
	}
}

func TestExecDetachedAndErrors(t *testing.T) {
	c, _ := startServer(t, shLauncher{}, withHostExecer)
	ctx := testCtx(t)
	if err := c.Create(ctx, CreateOptions{ID: "e2", Bundle: "true"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Exec(ctx, ExecOptions{ID: "e2", ExecID: "x", Process: sh("true")}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is not running") {
		t.Fatalf("exec in a created container: %v", err)
	}
	startSleeper(t, c, "e3")
	st, conn, err := c.Exec(ctx, ExecOptions{ID: "e3", ExecID: "d", Process: sh("exit 5")})
	if err != nil || conn != nil || st.Pid <= 0 {
		t.Fatalf("%+v %v %v", st, conn, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st.Running || st.ExitCode != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("detached exec: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
		st, _ = c.ExecState(ctx, "e3", "d")
	}
	if _, _, err := c.Exec(ctx, ExecOptions{ID: "e3", ExecID: "d", Process: sh("true")}); !errdefs.IsConflict(err) {
		t.Fatalf("duplicate exec id: %v", err)
	}
	_, _, err = c.Exec(ctx, ExecOptions{ID: "e3", ExecID: "m", Process: &specs.Process{Args: []string{"/no/such/binary"}},
		Attach: &AttachOptions{Stdout: true}})
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing binary: %v", err)
	}
}

func TestExecTTY(t *testing.T) {
	testutil.RequireRoot(t)
	c, _ := startServer(t, shLauncher{}, withHostExecer)
	ctx := testCtx(t)
	startSleeper(t, c, "e4")
	p := sh("read x; stty size; echo got $x")
	p.Terminal = true
	st, conn, err := c.Exec(ctx, ExecOptions{ID: "e4", ExecID: "t", Tty: true, OpenStdin: true, Process: p,
		Height: 20, Width: 70, Attach: &AttachOptions{Stdin: true, Stdout: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := c.Resize(ctx, "e4", "t", 25, 80); err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("hi\r"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(conn)
	if err != nil || string(out) != "hi\r\n25 80\r\ngot hi\r\n" {
		t.Fatalf("%q %v", out, err)
	}
	if st, _ = c.ExecState(ctx, "e4", "t"); st.Running || st.ExitCode != 0 {
		t.Fatalf("%+v", st)
	}
}
