package monitor

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/testutil"
)

// runcBundle makes an OCI bundle with a busybox rootfs whose process runs args, from `runc spec`.
func runcBundle(t *testing.T, args ...string) string {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed")
	}
	dir := shortTempDir(t)
	testutil.BusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	if out, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	spec.Process.Terminal = false
	spec.Process.Args = args
	if b, err = json.Marshal(&spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runcID is unique per test run: runc containers and cgroups are host-wide.
func runcID(t *testing.T) string {
	id := fmt.Sprintf("berth-mon-%d-%s", os.Getpid(), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	return id
}

// cleanupRunc removes whatever runc may have left of id if the test failed half way.
func cleanupRunc(t *testing.T, root, id string) {
	t.Cleanup(func() {
		exec.Command("runc", "--root", filepath.Join(root, "runc"), "delete", "--force", id).Run()
	})
}

func TestRuncContainer(t *testing.T) {
	bundle := runcBundle(t, "sh", "-c", "echo hello from $(hostname); read line; echo got $line; echo err >&2; exit 5")
	c, root := startServer(t, shLauncher{})
	ctx := testCtx(t)
	id := runcID(t)
	cleanupRunc(t, root, id)
	logPath := filepath.Join(root, "runc.log")
	if err := c.Create(ctx, CreateOptions{ID: id, Bundle: bundle, Runtime: "runc", LogPath: logPath, OpenStdin: true, StdinOnce: true}); err != nil {
		t.Fatal(err)
	}
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.Attach(ctx, id, true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pid, err := c.Start(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The pid is the container's init (in its own pid namespace), not runc's.
	if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil {
		t.Errorf("init %d: %v", pid, err)
	} else if self, _ := os.Readlink("/proc/self/ns/pid"); ns == self {
		t.Errorf("pid %d is in the host pid namespace: not the container's init", pid)
	}
	conn.Write([]byte("x\n"))
	conn.(*net.UnixConn).CloseWrite()
	out, errs := readAttach(t, conn, 20*time.Second)
	if out != "hello from runc\ngot x\n" || errs != "err\n" {
		t.Fatalf("got %q %q", out, errs)
	}
	if e := waitExit(t, events, id); e.ExitCode != 5 {
		t.Fatalf("%+v", e)
	}
	var logged string
	for _, l := range readLog(t, logPath) {
		logged += l.Log
	}
	if !strings.Contains(logged, "hello from runc\n") || !strings.Contains(logged, "err\n") {
		t.Fatalf("log: %q", logged)
	}
	if out, err := exec.Command("runc", "--root", filepath.Join(root, "runc"), "list", "-q").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("runc left containers: %s %v", out, err)
	}
}

func TestRuncStartError(t *testing.T) {
	bundle := runcBundle(t, "/nope")
	c, root := startServer(t, shLauncher{})
	ctx := testCtx(t)
	id := runcID(t)
	cleanupRunc(t, root, id)
	if err := c.Create(ctx, CreateOptions{ID: id, Bundle: bundle, Runtime: "runc"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Start(ctx, id)
	if err == nil || !strings.Contains(err.Error(), "/nope") {
		t.Fatalf("got %v, want runc's error about /nope", err)
	}
	t.Logf("start error: %v", err)
	if st, _ := c.State(ctx, id); st.Status != StatusCreated {
		t.Fatalf("%+v", st)
	}
	if err := c.Create(ctx, CreateOptions{ID: "other", Bundle: bundle, Runtime: "/no/such/runtime"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "other"); err == nil || !strings.Contains(err.Error(), "/no/such/runtime") {
		t.Fatalf("missing runtime: %v", err)
	}
}

func TestRuncKillRemovesCgroup(t *testing.T) {
	bundle := runcBundle(t, "sleep", "100")
	c, root := startServer(t, shLauncher{})
	ctx := testCtx(t)
	id := runcID(t)
	cleanupRunc(t, root, id)
	if err := c.Create(ctx, CreateOptions{ID: id, Bundle: bundle, Runtime: "runc"}); err != nil {
		t.Fatal(err)
	}
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := c.Start(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !strings.HasPrefix(string(cmdline), "sleep\x00100") {
		t.Fatalf("pid %d runs %q, want the entrypoint", pid, cmdline)
	}
	cg := memoryCgroup(t, pid)
	if _, err := os.Stat(cg); err != nil {
		t.Fatalf("container cgroup: %v", err)
	}
	if err := c.Kill(ctx, id, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if e := waitExit(t, events, id); e.ExitCode != 137 {
		t.Fatalf("%+v", e)
	}
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s still there: %v", cg, err)
	}
}

// memoryCgroup is the directory of pid's cgroup in the v1 memory hierarchy (or the v2 one).
func memoryCgroup(t *testing.T, pid int) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			if ctrl == "memory" {
				return filepath.Join("/sys/fs/cgroup/memory", parts[2])
			}
		}
	}
	t.Skip("no v1 memory cgroup")
	return ""
}
