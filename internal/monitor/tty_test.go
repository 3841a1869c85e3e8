package monitor

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestContainerTTY runs a host shell on a container terminal: one raw stream, input echoed by the line
// discipline, the size set by resize, and the devpts instance gone after delete.
func TestContainerTTY(t *testing.T) {
	testutil.RequireRoot(t)
	c, root := startServer(t, shLauncher{})
	ctx := testCtx(t)
	if err := c.Create(ctx, CreateOptions{ID: "tty1", Bundle: `read x; stty size; echo "got $x"; tty`, Tty: true, OpenStdin: true}); err != nil {
		t.Fatal(err)
	}
	pts := root + "/containers/tty1/pts"
	t.Cleanup(func() { _ = c.Delete(ctx, "tty1"); _ = unmountPts(root + "/containers/tty1") })
	conn, err := c.Attach(ctx, "tty1", true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.Start(ctx, "tty1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Resize(ctx, "tty1", "", 30, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("%v (got %q)", err, out)
	}
	want := "hello\r\n30 100\r\ngot hello\r\n" + pts + "/0\r\n"
	if string(out) != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	waitState(t, c, "tty1", StatusExited)
	if err := c.Delete(ctx, "tty1"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(pts)) {
		t.Fatal("devpts instance still mounted after delete")
	}
	if _, err := os.Stat(pts); !os.IsNotExist(err) {
		t.Fatalf("pts dir left: %v", err)
	}
}

func TestTTYLogIsStdout(t *testing.T) {
	testutil.RequireRoot(t)
	c, root := startServer(t, shLauncher{})
	ctx := testCtx(t)
	logPath := root + "/tty2.log"
	if err := c.Create(ctx, CreateOptions{ID: "tty2", Bundle: "echo out; echo err >&2; stty size", Tty: true, LogPath: logPath, Height: 12, Width: 34}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(ctx, "tty2") })
	if _, err := c.Start(ctx, "tty2"); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "tty2", StatusExited)
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"stderr"`) || !strings.Contains(string(b), `out\r\n`) || !strings.Contains(string(b), `err\r\n`) ||
		!strings.Contains(string(b), `12 34\r\n`) {
		t.Fatalf("log: %s", b)
	}
}
