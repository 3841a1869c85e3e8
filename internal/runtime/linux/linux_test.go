package linux

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/berth-dev/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	if len(os.Args) > 0 && os.Args[0] == InitArg0 {
		InitMain()
	}
	if os.Getenv(poolHelperEnv) != "" {
		poolHelperMain()
	}
	before := hostMounts()
	code := m.Run()
	closeTestPool()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := waitAllRemovals(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "cgroup removals still pending:", err)
		code = 1
	}
	cancel()
	// Every container's mounts live in its own mount namespace; none may appear on the host. Only our
	// own paths count: other test binaries may mount and unmount elsewhere meanwhile.
	for mp := range hostMounts() {
		if _, ok := before[mp]; !ok && (strings.HasPrefix(mp, filepath.Join(os.TempDir(), "Test")) ||
			(rootfsDir != "" && strings.HasPrefix(mp, rootfsDir))) {
			fmt.Fprintf(os.Stderr, "mount %s appeared on the host\n", mp)
			code = 1
		}
	}
	if rootfsDir != "" {
		_ = os.RemoveAll(rootfsDir)
	}
	for _, h := range []string{"memory", "pids", "cpu", "freezer", "systemd", "unified"} {
		if _, err := os.Stat("/sys/fs/cgroup/" + h + "/berth-test"); err == nil {
			fmt.Fprintf(os.Stderr, "cgroup /sys/fs/cgroup/%s/berth-test left behind\n", h)
			code = 1
		}
	}
	if code == 0 && os.Getenv(warmEnv) == "" && flag.Lookup("test.bench").Value.String() == "" {
		// Every container test again, each start through a Pool's spare.
		code = runWarm()
	}
	os.Exit(code)
}

// hostMounts returns the mount points in our mount namespace.
func hostMounts() map[string]struct{} {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	m := map[string]struct{}{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 {
			m[f[4]] = struct{}{}
		}
	}
	return m
}

var (
	rootfsOnce sync.Once
	rootfsDir  string
)

// sharedRootfs builds one busybox rootfs for the whole run: containers do not write to it.
func sharedRootfs(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireBusybox(t)
	rootfsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "berth-linux-rootfs-")
		if err != nil {
			t.Fatal(err)
		}
		testutil.BusyboxRootfs(t, dir)
		if err := os.Chmod(dir, 0o755); err != nil { // MkdirTemp's 0700 would lock out non-root users
			t.Fatal(err)
		}
		rootfsDir = dir
	})
	if rootfsDir == "" {
		t.Fatal("no rootfs")
	}
	return rootfsDir
}

type result struct {
	stdout, stderr string
	status         ExitStatus
}

// testID is unique per test so parallel or repeated runs never share a cgroup.
func testID(t *testing.T) string {
	return fmt.Sprintf("t%d-%s", os.Getpid(), strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
}

func cgroupPath(id string) string { return "/berth-test/" + id }

// removeCgroupLeftovers makes sure nothing a test created stays behind in any hierarchy.
func removeCgroupLeftovers(t testing.TB, id string) {
	t.Cleanup(func() {
		if cg, err := cgroups.New(cgroupPath(id)); err == nil {
			_ = cg.Kill()
			_ = cg.Destroy()
		}
		// runc on a hybrid host also creates the container's cgroup in the cgroup2 tree.
		_ = syscall.Rmdir("/sys/fs/cgroup/unified" + cgroupPath(id))
		_ = syscall.Rmdir("/sys/fs/cgroup/unified/berth-test")
		if parent, err := cgroups.New("/berth-test"); err == nil {
			_ = parent.Destroy() // fails while other tests still use it, which is fine
		}
	})
}

// start generates a spec from o (filling rootfs, id, cgroup), and spawns it with piped output.
func start(t *testing.T, o spec.Options) (*Process, func() result, error) {
	t.Helper()
	if o.Rootfs == "" {
		o.Rootfs = sharedRootfs(t)
	}
	o.ID = testID(t)
	o.CgroupsPath = cgroupPath(o.ID)
	removeCgroupLeftovers(t, o.ID)
	s, err := spec.Generate(o)
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	return startSpec(t, o.ID, s)
}

func startSpec(t *testing.T, id string, s *specs.Spec) (*Process, func() result, error) {
	t.Helper()
	bundle := t.TempDir()
	if err := spec.WriteBundle(bundle, s); err != nil {
		t.Fatal(err)
	}
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	t.Cleanup(func() { outR.Close(); errR.Close() })
	var wg sync.WaitGroup
	var out, serr bytes.Buffer
	wg.Add(2)
	go func() { defer wg.Done(); _, _ = io.Copy(&out, outR) }()
	go func() { defer wg.Done(); _, _ = io.Copy(&serr, errR) }()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := testSpawn(ctx, t, SpawnOptions{ID: id, Bundle: bundle, InitPath: exe, Stdio: Stdio{Stdout: outW, Stderr: errW}})
	outW.Close()
	errW.Close()
	if err != nil {
		wg.Wait()
		return nil, nil, err
	}
	t.Cleanup(func() {
		_ = p.Signal(syscall.SIGKILL)
		_, _ = p.Wait()
	})
	wait := func() result {
		st, err := p.Wait()
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		wg.Wait()
		return result{stdout: out.String(), stderr: serr.String(), status: st}
	}
	return p, wait, nil
}

// run starts a container and waits for it.
func run(t *testing.T, o spec.Options) result {
	t.Helper()
	_, wait, err := start(t, o)
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	return wait()
}

func sh(script string) []string { return []string{"sh", "-c", script} }

func TestEchoAndExitCode(t *testing.T) {
	r := run(t, spec.Options{Args: []string{"echo", "hello", "world"}})
	if r.stdout != "hello world\n" || r.status.Code != 0 {
		t.Fatalf("got %q code %d stderr %q", r.stdout, r.status.Code, r.stderr)
	}
	r = run(t, spec.Options{Args: sh("echo oops >&2; exit 3")})
	if r.status.Code != 3 || r.stderr != "oops\n" {
		t.Fatalf("got code %d stderr %q", r.status.Code, r.stderr)
	}
}

func TestSIGKILLIs137(t *testing.T) {
	p, wait, err := start(t, spec.Options{Args: []string{"sleep", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r := wait()
	if r.status.Code != 137 || r.status.Signal != 9 || r.status.OOMKilled {
		t.Fatalf("status %+v", r.status)
	}
}

func TestHostnamePid1AndEnv(t *testing.T) {
	r := run(t, spec.Options{Hostname: "boxy", Args: sh(`hostname; echo $$; echo $HOME; pwd`), Cwd: "/tmp"})
	if r.stdout != "boxy\n1\n/root\n/tmp\n" {
		t.Fatalf("got %q stderr %q", r.stdout, r.stderr)
	}
}

func TestUserAndGroups(t *testing.T) {
	r := run(t, spec.Options{User: "berth", Args: []string{"id"}})
	want := "uid=1000(berth) gid=1000(berth) groups=1000(berth),2000(extra)\n"
	if r.stdout != want {
		t.Fatalf("id: got %q want %q (stderr %q)", r.stdout, want, r.stderr)
	}
	r = run(t, spec.Options{User: "1234:5678", GroupAdd: []string{"extra"}, Args: sh(`id -u; id -g; id -G; echo $HOME`)})
	if r.stdout != "1234\n5678\n5678 2000\n/\n" {
		t.Fatalf("numeric user: got %q (stderr %q)", r.stdout, r.stderr)
	}
}

// TestCapabilities checks the default set is Docker's (CapEff 0xa80425fb) and that a non-root user
// ends with no effective capabilities, as with Docker.
func TestCapabilities(t *testing.T) {
	r := run(t, spec.Options{Args: sh(`grep -E '^Cap(Eff|Bnd|Inh|Amb)' /proc/self/status`)})
	for _, want := range []string{"CapInh:\t0000000000000000", "CapEff:\t00000000a80425fb", "CapBnd:\t00000000a80425fb", "CapAmb:\t0000000000000000"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("root: want %q in %q", want, r.stdout)
		}
	}
	r = run(t, spec.Options{User: "berth", Args: sh(`grep -E '^Cap(Eff|Bnd)' /proc/self/status`)})
	for _, want := range []string{"CapEff:\t0000000000000000", "CapBnd:\t00000000a80425fb"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("berth: want %q in %q", want, r.stdout)
		}
	}
	r = run(t, spec.Options{CapDrop: []string{"ALL"}, CapAdd: []string{"net_admin"}, Args: sh(`grep CapEff /proc/self/status; ip link set lo down && echo ok`)})
	if !strings.Contains(r.stdout, "CapEff:\t0000000000001000") || !strings.Contains(r.stdout, "ok") {
		t.Errorf("cap-add: got %q stderr %q", r.stdout, r.stderr)
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	r := run(t, spec.Options{Args: sh(`wc -c < /proc/keys; wc -c < /proc/timer_list; ls /proc/acpi | wc -l;
		echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo wrote-proc-sys;
		touch /sys/x 2>/dev/null && echo wrote-sys;
		grep -E ' /proc/sys | /sys ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1`)})
	want := "0\n0\n0\n/sys ro\n/proc/sys ro\n"
	if r.stdout != want {
		t.Fatalf("got %q want %q (stderr %q)", r.stdout, want, r.stderr)
	}
}

func TestDevAndFds(t *testing.T) {
	r := run(t, spec.Options{Args: sh(`ls /dev | tr '\n' ' '; echo; ls -l /proc/self/fd | grep -v ' [012] -> ' | grep -- '->' ; true`)})
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "mqueue", "fd", "stdin"} {
		if !strings.Contains(" "+lines[0]+" ", " "+d+" ") {
			t.Errorf("/dev lacks %s: %q", d, lines[0])
		}
	}
	// ls itself has one fd open on /proc/<pid>/fd; anything else leaked from the daemon or the init.
	for _, l := range lines[1:] {
		if !strings.Contains(l, "/fd") {
			t.Errorf("leaked fd: %q", l)
		}
	}
	// A leaked fd would show up; make sure the test would see one: open a non-cloexec file here.
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_SETFD, 0); e != 0 {
		t.Fatal(e)
	}
	r = run(t, spec.Options{Args: sh(`ls /proc/self/fd | tr '\n' ' '`)})
	if r.stdout != "0 1 2 3 " {
		t.Errorf("fds inside: %q", r.stdout)
	}
}

func TestReadonlyRootfs(t *testing.T) {
	r := run(t, spec.Options{ReadonlyRootfs: true, Args: sh(`touch /x 2>/dev/null && echo wrote; touch /dev/shm/y && echo shm-ok`)})
	if r.stdout != "shm-ok\n" {
		t.Fatalf("got %q (stderr %q)", r.stdout, r.stderr)
	}
}

func TestMemoryLimit(t *testing.T) {
	if cgroups.Mode() == cgroups.Unified {
		t.Skip("v1 paths")
	}
	p, wait, err := start(t, spec.Options{
		Resources: spec.Resources{Memory: 64 << 20},
		Args:      sh(`cat /sys/fs/cgroup/memory/memory.limit_in_bytes; read x`),
	})
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.ReadFile(filepath.Join(p.Cgroup().Path("memory"), "memory.limit_in_bytes"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(host)) != strconv.Itoa(64<<20) {
		t.Errorf("host memory.limit_in_bytes = %q", host)
	}
	r := wait()
	if r.stdout != strconv.Itoa(64<<20)+"\n" {
		t.Errorf("inside: %q (stderr %q)", r.stdout, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitCleanup(ctx); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if _, err := os.Stat(p.Cgroup().Path("memory")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cgroup not removed after WaitCleanup: %v", err)
	}
}

func TestCPUQuota(t *testing.T) {
	if cgroups.Mode() == cgroups.Unified {
		t.Skip("v1 paths")
	}
	p, wait, err := start(t, spec.Options{
		Resources: spec.Resources{NanoCPUs: 5e8, CPUShares: 512},
		Args:      sh(`cd /sys/fs/cgroup/cpu && cat cpu.cfs_quota_us cpu.cfs_period_us cpu.shares`),
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := p.Cgroup().Path("cpu")
	r := wait()
	if r.stdout != "50000\n100000\n512\n" {
		t.Errorf("inside: %q (stderr %q), host dir %s", r.stdout, r.stderr, dir)
	}
}

func TestPidsLimit(t *testing.T) {
	limit := int64(10)
	p, wait, err := start(t, spec.Options{
		Resources: spec.Resources{PidsLimit: &limit},
		// The inner shell dies at its first failed fork; its sleeps and the outer shell stay to be counted.
		Args: sh(`sh -c 'for i in $(seq 40); do sleep 3 & done'; sleep 2`),
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := p.Cgroup().Path("pids")
	if cgroups.Mode() == cgroups.Unified {
		dir = p.Cgroup().Path("")
	}
	var max int
	for i := 0; i < 20; i++ {
		b, err := os.ReadFile(filepath.Join(dir, "pids.current"))
		if err != nil {
			break
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if n > max {
			max = n
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := wait()
	if max > 10 || max < 8 {
		t.Errorf("max pids.current = %d, want 8..10 (stderr %q, stdout %q)", max, r.stderr, r.stdout)
	}
	if !strings.Contains(strings.ToLower(r.stderr), "fork") && !strings.Contains(r.stderr, "Resource temporarily unavailable") {
		t.Errorf("expected fork failures, stderr %q", r.stderr)
	}
}

func TestOOMKilled(t *testing.T) {
	r := run(t, spec.Options{
		Resources: spec.Resources{Memory: 32 << 20, MemorySwap: 32 << 20},
		Args:      sh(`head -c 200m /dev/zero | tail > /dev/null`),
	})
	if !r.status.OOMKilled || r.status.Code != 137 {
		t.Fatalf("status %+v stderr %q", r.status, r.stderr)
	}
}

func TestExecErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
		code int
	}{
		{[]string{"nosuchcmd"}, `exec: "nosuchcmd": executable file not found in $PATH`, 127},
		{[]string{"/nope"}, `exec: "/nope": stat /nope: no such file or directory`, 127},
		{[]string{"/etc/passwd"}, `exec: "/etc/passwd": permission denied`, 126},
	}
	for _, tc := range cases {
		t.Run(tc.args[0], func(t *testing.T) {
			_, _, err := start(t, spec.Options{Args: tc.args})
			if err == nil {
				t.Fatal("spawn succeeded")
			}
			var ie *InitError
			if !errors.As(err, &ie) || !errdefs.IsInvalidParameter(err) {
				t.Fatalf("error %T %v", err, err)
			}
			if err.Error() != tc.want || ie.ExitCode() != tc.code {
				t.Fatalf("got %q (%d), want %q (%d)", err, ie.ExitCode(), tc.want, tc.code)
			}
			if _, err := os.Stat("/sys/fs/cgroup/memory" + cgroupPath(testID(t))); cgroups.Mode() != cgroups.Unified && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cgroup left behind: %v", err)
			}
		})
	}
}

func TestStdinAndMounts(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, spec.Options{
		Mounts: []specs.Mount{
			{Destination: "/data", Type: "bind", Source: host, Options: []string{"rbind", "ro"}},
			{Destination: "/etc/hostname", Type: "bind", Source: filepath.Join(host, "f"), Options: []string{"rbind"}},
		},
		ShmSize: 1 << 20,
		Args:    sh(`cat /data/f /etc/hostname; touch /data/x 2>/dev/null && echo wrote; df -k /dev/shm | tail -1 | awk '{print $2}'`),
	})
	if r.stdout != "from-host\nfrom-host\n1024\n" {
		t.Fatalf("got %q (stderr %q)", r.stdout, r.stderr)
	}
}

// TestRuncRunsOurBundle proves the generated config.json is a standard OCI bundle.
func TestRuncRunsOurBundle(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not installed")
	}
	cases := []struct {
		o    spec.Options
		want string
	}{
		{spec.Options{Args: []string{"echo", "hi"}}, "hi\n"},
		{spec.Options{User: "berth", Hostname: "rc", Resources: spec.Resources{Memory: 64 << 20},
			Args: sh(`id -u; id -G; hostname; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; grep CapEff /proc/self/status; wc -c < /proc/timer_list`)},
			"1000\n1000 2000\nrc\n" + strconv.Itoa(64<<20) + "\nCapEff:\t0000000000000000\n0\n"},
	}
	for i, tc := range cases {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			if cgroups.Mode() == cgroups.Unified && tc.o.Resources.Memory != 0 {
				t.Skip("v1 paths")
			}
			o := tc.o
			o.Rootfs = sharedRootfs(t)
			o.ID = testID(t)
			o.CgroupsPath = cgroupPath(o.ID)
			removeCgroupLeftovers(t, o.ID)
			s, err := spec.Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			bundle := t.TempDir()
			if err := spec.WriteBundle(bundle, s); err != nil {
				t.Fatal(err)
			}
			state := t.TempDir()
			t.Cleanup(func() { _ = exec.Command(runc, "--root", state, "delete", "-f", o.ID).Run() })
			var out, serr bytes.Buffer
			cmd := exec.Command(runc, "--root", state, "run", "--bundle", bundle, o.ID)
			cmd.Stdout, cmd.Stderr = &out, &serr
			if err := cmd.Run(); err != nil {
				t.Fatalf("runc: %v: %s", err, serr.String())
			}
			if out.String() != tc.want {
				t.Fatalf("runc output %q want %q (stderr %q)", out.String(), tc.want, serr.String())
			}
		})
	}
}
