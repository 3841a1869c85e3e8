package linux

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/berth-dev/berth/internal/testutil"
)

const (
	// warmEnv set means this test binary runs every container start through testPool's spare.
	warmEnv = "BERTH_TEST_WARM"
	// poolHelperEnv makes the test binary a pool owner for TestSpareDiesWithParent and
	// TestWarmContainerOutlivesPool: "-" keeps a spare, a bundle path also starts that container warm.
	poolHelperEnv = "BERTH_TEST_POOL_HELPER"
)

var testPool *Pool

// runWarm re-runs this test binary with warmEnv set and returns its exit code.
func runWarm() int {
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), warmEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Println("=== again with warm starts")
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func closeTestPool() {
	if testPool != nil {
		if err := testPool.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close pool:", err)
		}
	}
}

// testSpawn spawns cold, or in warm mode through testPool once its spare is ready, and then checks the
// start really was warm.
func testSpawn(ctx context.Context, t *testing.T, o SpawnOptions) (*Process, error) {
	t.Helper()
	if os.Getenv(warmEnv) == "" {
		return Spawn(ctx, o)
	}
	if testPool == nil {
		testPool = NewPool(o.InitPath)
	}
	wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := testPool.waitSpare(wctx); err != nil {
		t.Fatalf("no spare: %v", err)
	}
	p, err := testPool.Spawn(ctx, o)
	if err == nil && !p.warm {
		t.Errorf("start was not warm")
	}
	return p, err
}

// poolHelperMain keeps a pool in a child process and says what it started: "spare <pid>", then for a
// bundle "container <pid>". It blocks until killed.
func poolHelperMain() {
	exe, _ := os.Executable()
	p := NewPool(exe)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sp, err := p.waitSpare(ctx)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("spare", sp.cmd.Process.Pid)
	if bundle := os.Getenv(poolHelperEnv); bundle != "-" {
		c, err := p.Spawn(ctx, SpawnOptions{ID: "helper", Bundle: bundle, InitPath: exe})
		if err != nil || !c.warm {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("container", c.Pid())
	}
	select {}
}

// startPoolHelper runs poolHelperMain and returns the pids it printed, by kind.
func startPoolHelper(t *testing.T, bundle string, want ...string) (*exec.Cmd, map[string]int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), poolHelperEnv+"="+bundle)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pids := map[string]int{}
	sc := bufio.NewScanner(out)
	for _, w := range want {
		if !sc.Scan() {
			t.Fatalf("helper ended before %s", w)
		}
		f := strings.Fields(sc.Text())
		if len(f) != 2 || f[0] != w {
			t.Fatalf("helper said %q, want %s", sc.Text(), w)
		}
		pids[w], _ = strconv.Atoi(f[1])
	}
	return cmd, pids
}

// gone reports whether pid has exited (a zombie counts: it runs nothing and holds nothing).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func waitGone(pid int, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if gone(pid) {
			return true
		}
	}
	return false
}

func newTestPool(t *testing.T) *Pool {
	t.Helper()
	testutil.RequireRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := NewPool(exe)
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func waitSpare(t *testing.T, p *Pool) *spare {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sp, err := p.waitSpare(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// TestSpareHoldsNoExtraFds: a spare has /dev/null as 0-2 and its socket, nothing the parent leaked, and
// is in its own pid and net namespaces but still the parent's mount namespace.
func TestSpareHoldsNoExtraFds(t *testing.T) {
	leak, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer leak.Close()
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, leak.Fd(), syscall.F_SETFD, 0); e != 0 {
		t.Fatal(e)
	}
	p := newTestPool(t)
	pid := waitSpare(t, p).cmd.Process.Pid
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		switch {
		case strings.HasPrefix(target, "anon_inode:"), strings.HasPrefix(target, "/sys/fs/cgroup/"):
			continue // the Go runtime's own: netpoll, and the CPU limit files it rereads
		case strings.HasPrefix(target, "socket:"):
			target = "socket"
		}
		got = append(got, e.Name()+"="+target)
	}
	sort.Strings(got)
	want := []string{"0=/dev/null", "100=socket", "1=/dev/null", "2=/dev/null", "3=socket", "4=socket"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("spare fds %v, want %v", got, want)
	}
	for ns, same := range map[string]bool{"pid": false, "net": true, "uts": false, "ipc": false, "mnt": true} {
		mine, _ := os.Readlink("/proc/self/ns/" + ns)
		its, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if (mine == its) != same {
			t.Errorf("%s namespace: ours %s, spare's %s", ns, mine, its)
		}
	}
	// It booted at idle priority, but waits for work at ours, every thread of it.
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, e := range tasks {
		tid, _ := strconv.Atoi(e.Name())
		if a, err := unix.SchedGetAttr(tid, 0); err != nil || a.Policy != unix.SCHED_NORMAL {
			t.Errorf("spare thread %d: %+v %v, want SCHED_NORMAL", tid, a, err)
		}
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); testing.Verbose() {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "RssAnon") {
				t.Log("spare", l)
			}
		}
	}
}

// TestSpareDiesWithParent: killing the pool's process kills its spare.
func TestSpareDiesWithParent(t *testing.T) {
	testutil.RequireRoot(t)
	helper, pids := startPoolHelper(t, "-", "spare")
	if gone(pids["spare"]) {
		t.Fatal("spare not running")
	}
	_ = helper.Process.Kill()
	_ = helper.Wait()
	if !waitGone(pids["spare"], 5*time.Second) {
		_ = syscall.Kill(pids["spare"], syscall.SIGKILL)
		t.Fatal("spare outlived its pool's process")
	}
}

// TestWarmContainerOutlivesPool: once a spare runs a container, the pool's death no longer kills it.
func TestWarmContainerOutlivesPool(t *testing.T) {
	o := spec.Options{Rootfs: sharedRootfs(t), Args: []string{"sleep", "100"}, ID: "helper"}
	o.CgroupsPath = cgroupPath(testID(t))
	removeCgroupLeftovers(t, testID(t))
	s, err := spec.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	if err := spec.WriteBundle(bundle, s); err != nil {
		t.Fatal(err)
	}
	helper, pids := startPoolHelper(t, bundle, "spare", "container")
	c := pids["container"]
	t.Cleanup(func() { _ = syscall.Kill(c, syscall.SIGKILL); waitGone(c, 5*time.Second) })
	if c != pids["spare"] {
		t.Fatalf("container pid %d is not the spare's %d", c, pids["spare"])
	}
	_ = helper.Process.Kill()
	_ = helper.Wait()
	time.Sleep(200 * time.Millisecond)
	if gone(c) {
		t.Fatal("warm container died with the pool's process")
	}
}

// TestWarmJoinsNetnsByPath: a spec joining a network namespace by path still starts warm, and ends up in
// that namespace, not the spare's own.
func TestWarmJoinsNetnsByPath(t *testing.T) {
	p := newTestPool(t)
	waitSpare(t, p)
	mine, _ := os.Readlink("/proc/self/ns/net")
	r, warm := runIn(t, p, spec.Options{NetNSPath: fmt.Sprintf("/proc/%d/ns/net", os.Getpid()), Args: []string{"readlink", "/proc/self/ns/net"}}, nil)
	if !warm || r.stdout != mine+"\n" {
		t.Fatalf("warm %v, netns %q want %q (stderr %q)", warm, r.stdout, mine, r.stderr)
	}
}

// TestPoolColdWhenNamespacesDiffer: host ipc is not the spare's namespace set; the start goes cold and
// the spare stays for the next one.
func TestPoolColdWhenNamespacesDiffer(t *testing.T) {
	p := newTestPool(t)
	sp := waitSpare(t, p)
	mine, _ := os.Readlink("/proc/self/ns/ipc")
	r, warm := runIn(t, p, spec.Options{Args: []string{"readlink", "/proc/self/ns/ipc"}}, func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.IPCNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	})
	if warm || r.stdout != mine+"\n" {
		t.Fatalf("warm %v, ipc ns %q want %q (stderr %q)", warm, r.stdout, mine, r.stderr)
	}
	if waitSpare(t, p) != sp {
		t.Error("spare was used")
	}
}

// TestPoolSurvivesDeadSpare: a spare killed while idle is noticed at handoff; the start goes cold and a
// new spare follows.
func TestPoolSurvivesDeadSpare(t *testing.T) {
	p := newTestPool(t)
	sp := waitSpare(t, p)
	_ = sp.cmd.Process.Kill()
	r, warm := runIn(t, p, spec.Options{Args: []string{"echo", "ok"}}, nil)
	if warm || r.stdout != "ok\n" || r.status.Code != 0 {
		t.Fatalf("warm %v, got %+v", warm, r)
	}
	if next := waitSpare(t, p); next == sp {
		t.Error("dead spare kept")
	}
}

// TestRestartSameCgroup: back-to-back runs with one cgroup path work although the first run's cgroup is
// removed in the background, and nothing is left once WaitCleanup returns.
func TestRestartSameCgroup(t *testing.T) {
	p := newTestPool(t)
	var last *Process
	for i := 0; i < 5; i++ {
		r, _ := runIn(t, p, spec.Options{Args: []string{"true"}}, nil)
		if r.status.Code != 0 {
			t.Fatalf("run %d: %+v", i, r)
		}
		last = r.proc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := last.WaitCleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(last.Cgroup().Path("pids")); !os.IsNotExist(err) {
		t.Errorf("cgroup still there: %v", err)
	}
}

type poolResult struct {
	result
	proc *Process
}

// runIn runs a container through p (with edit applied to its spec) and says whether it was warm.
func runIn(t *testing.T, p *Pool, o spec.Options, edit func(*specs.Spec)) (poolResult, bool) {
	t.Helper()
	o.Rootfs = sharedRootfs(t)
	o.ID = testID(t)
	o.CgroupsPath = cgroupPath(o.ID)
	removeCgroupLeftovers(t, o.ID)
	s, err := spec.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(s)
	}
	bundle := t.TempDir()
	if err := spec.WriteBundle(bundle, s); err != nil {
		t.Fatal(err)
	}
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	defer outR.Close()
	defer errR.Close()
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	proc, err := p.Spawn(ctx, SpawnOptions{ID: o.ID, Bundle: bundle, InitPath: exe, Stdio: Stdio{Stdout: outW, Stderr: errW}})
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	st, err := proc.Wait()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := readAllString(outR)
	serr, _ := readAllString(errR)
	return poolResult{result{stdout: out, stderr: serr, status: st}, proc}, proc.warm
}

func readAllString(f *os.File) (string, error) {
	b, err := io.ReadAll(f)
	return string(b), err
}

// TestWarmNetworkNamespaces: a spare serves a new network namespace (made at the job, with lo up) and
// the host's (--network host) alike.
func TestWarmNetworkNamespaces(t *testing.T) {
	p := newTestPool(t)
	mine, _ := os.Readlink("/proc/self/ns/net")
	waitSpare(t, p)
	r, warm := runIn(t, p, spec.Options{Args: []string{"sh", "-c", "readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate"}}, nil)
	if !warm || strings.HasPrefix(r.stdout, mine+"\n") || !strings.Contains(r.stdout, "unknown") {
		t.Fatalf("new netns: warm %v, got %q (host's %q, stderr %q)", warm, r.stdout, mine, r.stderr)
	}
	waitSpare(t, p)
	r, warm = runIn(t, p, spec.Options{HostNetwork: true, Args: []string{"readlink", "/proc/self/ns/net"}}, nil)
	if !warm || r.stdout != mine+"\n" {
		t.Fatalf("host netns: warm %v, got %q want %q (stderr %q)", warm, r.stdout, mine, r.stderr)
	}
}
