// Package integration runs berthd for real (as root, real containers) and drives it through the stock
// docker CLI, the Docker Go SDK and the berth CLI. Every test cleans up what it made; TestMain removes the
// daemon, the monitor, mounts and cgroups even when tests fail.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/docker/docker/client"
)

var env struct {
	tmp      string
	berthd   string // binary
	berth    string // CLI binary
	dataRoot string
	execRoot string
	sock     string
	daemon   *exec.Cmd
	logFile  *os.File
}

const busybox = "busybox:latest"

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("integration tests need root (namespaces, mounts, cgroups); skipping")
		os.Exit(0)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration setup:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	env.tmp, err = os.MkdirTemp("", "berth-it-")
	if err != nil {
		return 1, err
	}
	defer teardown()
	env.berthd = filepath.Join(env.tmp, "berthd")
	env.berth = filepath.Join(env.tmp, "berth")
	// berth-init next to berthd, as installed: the monitor runs it as container init and exec helper.
	builds := map[string]string{env.berthd: "../cmd/berthd", env.berth: "../cmd/berth", filepath.Join(env.tmp, "berth-init"): "../cmd/berth-init"}
	for bin, pkg := range builds {
		// As the Makefile builds them: static, with cgo for exec's namespace-joining constructor.
		cmd := exec.Command("go", "build", "-tags", "netgo,osusergo", "-ldflags", "-s -w -extldflags -static", "-o", bin, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 1, fmt.Errorf("building %s: %v\n%s", pkg, err, out)
		}
	}
	env.dataRoot = filepath.Join(env.tmp, "data")
	env.execRoot = filepath.Join(env.tmp, "exec")
	env.sock = filepath.Join(env.execRoot, "berth.sock")
	if err := setupTLS(); err != nil {
		return 1, err
	}
	if err := startDaemon(); err != nil {
		return 1, err
	}
	tarPath := filepath.Join(env.tmp, "busybox.tar")
	if err := testutil.WriteBusyboxTar(env.tmp, tarPath); err != nil {
		return 1, err
	}
	if out, err := berthCmd("import", tarPath, busybox).CombinedOutput(); err != nil {
		return 1, fmt.Errorf("importing busybox: %v\n%s", err, out)
	}
	return m.Run(), nil
}

// startDaemon starts berthd on the test roots and waits until it answers.
func startDaemon() error {
	lf, err := os.OpenFile(filepath.Join(env.tmp, "berthd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	env.logFile = lf
	cmd := exec.Command(env.berthd, "--data-root", env.dataRoot, "--exec-root", env.execRoot, "--log-level", "debug", "--bridge", testBridge,
		"--registry-certs-dir", filepath.Join(env.tmp, "certs.d"))
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), executorDebugEnv()...)
	cmd.Args = append(cmd.Args, tlsDaemonArgs()...)
	if err := cmd.Start(); err != nil {
		return err
	}
	env.daemon = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(lf.Name())
			return fmt.Errorf("berthd exited: %v\n%s", err, tail(string(log), 2000))
		default:
		}
		if out, err := dockerCmd("version", "--format", "{{.Server.Version}}").CombinedOutput(); err == nil && len(out) > 0 {
			go func() { <-exited }() // reap whenever it ends
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("berthd did not answer within 20s")
}

// stopDaemon stops berthd with sig (SIGTERM for a clean stop, SIGKILL to simulate a crash).
func stopDaemon(sig syscall.Signal) {
	if env.daemon == nil || env.daemon.Process == nil {
		return
	}
	_ = env.daemon.Process.Signal(sig)
	for i := 0; i < 200; i++ {
		if err := env.daemon.Process.Signal(syscall.Signal(0)); err != nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	env.daemon = nil
	if env.logFile != nil {
		env.logFile.Close()
	}
}

func teardown() {
	if env.daemon != nil {
		// Remove containers through the API so their mounts and cgroups go the normal way.
		if out, err := dockerCmd("ps", "-aq").Output(); err == nil {
			ids := strings.Fields(string(out))
			if len(ids) > 0 {
				_ = dockerCmd(append([]string{"rm", "-f"}, ids...)...).Run()
			}
		}
		_ = dockerCmd("network", "prune", "-f").Run()
		stopDaemon(syscall.SIGTERM)
	}
	removeNetworking()
	// Whatever still runs from our roots (the monitor, leftover containers) goes now.
	killProcessesUnder(env.tmp)
	unmountUnder(env.tmp)
	removeCgroups()
	if os.Getenv("BERTH_KEEP_TMP") == "" {
		_ = os.RemoveAll(env.tmp)
	}
}

// killProcessesUnder kills processes whose command line or executable mentions dir (our binaries live
// there, and the monitor gets the exec root as a flag), and container processes in our cgroups.
func killProcessesUnder(dir string) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if bytes.Contains(cmdline, []byte(dir)) || strings.HasPrefix(exe, dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, procs := range cgroupProcFiles() {
		data, _ := os.ReadFile(procs)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
}

// removeNetworking deletes the test daemon's bridges and rule table. Bridges of networks the tests
// created are found through the daemon's records when it could not prune them itself.
func removeNetworking() {
	_ = exec.Command("ip", "link", "del", testBridge).Run()
	_ = exec.Command("nft", "delete", "table", "ip", "berth-"+testBridge).Run()
	out, _ := exec.Command("ip", "-o", "link", "show", "type", "bridge").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if strings.HasPrefix(name, "br-") && testBridges[name] {
			_ = exec.Command("ip", "link", "del", name).Run()
		}
	}
}

func unmountUnder(dir string) {
	for i := 0; i < 3; i++ {
		f, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			return
		}
		var targets []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 && strings.HasPrefix(fields[4], dir) {
				targets = append(targets, fields[4])
			}
		}
		f.Close()
		if len(targets) == 0 {
			return
		}
		for j := len(targets) - 1; j >= 0; j-- {
			_ = syscall.Unmount(targets[j], syscall.MNT_DETACH)
		}
	}
}

// cgroupProcFiles lists cgroup.procs files of container cgroups under /berth made by these tests'
// containers (every container of this run's daemon).
func cgroupProcFiles(daemonRoots ...string) []string {
	var out []string
	ids := knownContainerIDs(daemonRoots...)
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
	if fileExists("/sys/fs/cgroup/berth") {
		roots = append(roots, "/sys/fs/cgroup/berth")
	}
	for _, r := range roots {
		for id := range ids {
			p := filepath.Join(r, id, "cgroup.procs")
			if fileExists(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

func removeCgroups(daemonRoots ...string) {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*/berth")
	if fileExists("/sys/fs/cgroup/berth") {
		roots = append(roots, "/sys/fs/cgroup/berth")
	}
	for _, r := range roots {
		for id := range knownContainerIDs(daemonRoots...) {
			_ = os.Remove(filepath.Join(r, id))
		}
	}
}

// killContainers kills the processes of every container the daemons with these data and exec roots
// ever had, and removes their cgroups: containers outlive their daemon by design.
func killContainers(daemonRoots ...string) {
	for _, procs := range cgroupProcFiles(daemonRoots...) {
		data, _ := os.ReadFile(procs)
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	removeCgroups(daemonRoots...)
}

// knownContainerIDs are the containers the daemon with these data and exec roots (none: this run's
// main daemon) ever had, from their directories.
func knownContainerIDs(daemonRoots ...string) map[string]bool {
	ids := map[string]bool{}
	if len(daemonRoots) == 0 {
		daemonRoots = []string{env.dataRoot, env.execRoot}
	}
	for _, root := range daemonRoots {
		d := filepath.Join(root, "containers")
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if e.IsDir() && len(e.Name()) == 64 {
				ids[e.Name()] = true
			}
		}
	}
	return ids
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// dockerCmd runs the stock docker CLI against berthd.
func dockerCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(dockerBin(), args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+env.sock, "DOCKER_CONFIG="+filepath.Join(env.tmp, "docker-config"))
	return cmd
}

func dockerBin() string {
	if p, err := exec.LookPath("/usr/local/bin/docker"); err == nil {
		return p
	}
	return "docker"
}

// berthCmd runs our CLI against berthd.
func berthCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(env.berth, args...)
	cmd.Env = append(os.Environ(), "BERTH_HOST=unix://"+env.sock, "DOCKER_CONFIG="+filepath.Join(env.tmp, "docker-config"))
	return cmd
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

func runCmd(t testing.TB, cmd *exec.Cmd, stdin string) result {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", cmd.Args, err)
	}
	return result{out.String(), errb.String(), code}
}

// docker runs the docker CLI and returns its result.
func docker(t testing.TB, args ...string) result {
	t.Helper()
	return runCmd(t, dockerCmd(args...), "")
}

// mustDocker runs the docker CLI and fails the test unless it exits 0; it returns trimmed stdout.
func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	r := docker(t, args...)
	if r.code != 0 {
		t.Fatalf("docker %s: %s", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.stdout)
}

func berth(t testing.TB, args ...string) result {
	t.Helper()
	return runCmd(t, berthCmd(args...), "")
}

// sdk returns a Docker Go SDK client for berthd.
func sdk(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost("unix://"+env.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rmOnCleanup removes containers by name or ID when the test ends, however it ends.
func rmOnCleanup(t testing.TB, refs ...string) {
	t.Cleanup(func() {
		_ = dockerCmd(append([]string{"rm", "-f"}, refs...)...).Run()
	})
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func uniqueName(t testing.TB) string {
	n := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return fmt.Sprintf("%s-%d", n, time.Now().UnixNano()%100000)
}
