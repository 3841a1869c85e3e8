package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCluster is several berthd hosts on one machine: each runs in its own network namespace (and UTS
// namespace, for its own hostname) with its own data root, exec root and socket. The namespaces are wired
// by veths to a bridge the test creates; the bridge has no address, so only addresses inside the test's
// namespaces are ever reached. Cleanup removes everything even when the test fails.
type testCluster struct {
	t      *testing.T
	id     string // unique per test: the pid and a counter
	dir    string
	bridge string
	subnet string // "10.a.b"
	hosts  []*clusterHost
}

// clusterHost is one berthd of a test cluster.
type clusterHost struct {
	c          *testCluster
	name       string
	ns, veth   string
	ip         string
	data, exec string
	sock       string
	cmd        *exec.Cmd
	exited     chan struct{}
}

var clusterSeq int

// newTestCluster starts berthds named names (their hostnames), each in its own network namespace.
func newTestCluster(t *testing.T, names ...string) *testCluster {
	t.Helper()
	clusterSeq++
	pid := os.Getpid()
	c := &testCluster{
		t:      t,
		id:     fmt.Sprintf("%d%d", pid%100000, clusterSeq),
		subnet: fmt.Sprintf("10.%d.%d", 150+pid%100, clusterSeq%250),
	}
	c.dir = filepath.Join(env.tmp, "cluster-"+c.id)
	c.bridge = "bcl" + c.id
	t.Cleanup(c.teardown)
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.ip("link", "add", c.bridge, "type", "bridge")
	c.ip("link", "set", c.bridge, "up")
	for i, name := range names {
		h := &clusterHost{
			c: c, name: name,
			ns:   fmt.Sprintf("berth-cl%s-%d", c.id, i),
			veth: fmt.Sprintf("vcl%sx%d", c.id, i),
			ip:   fmt.Sprintf("%s.%d", c.subnet, 10+i),
		}
		root := filepath.Join(c.dir, name)
		h.data, h.exec = filepath.Join(root, "data"), filepath.Join(root, "exec")
		h.sock = filepath.Join(h.exec, "berth.sock")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		c.hosts = append(c.hosts, h)
		c.ip("netns", "add", h.ns)
		c.ip("link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns)
		c.ip("link", "set", h.veth, "master", c.bridge, "up")
		c.ip("-n", h.ns, "addr", "add", h.ip+"/24", "dev", "eth0")
		c.ip("-n", h.ns, "link", "set", "eth0", "up")
		c.ip("-n", h.ns, "link", "set", "lo", "up")
	}
	for _, h := range c.hosts {
		h.start()
	}
	for _, h := range c.hosts {
		h.waitUp()
	}
	return c
}

func (c *testCluster) ip(args ...string) {
	c.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		c.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// workerSwarm imports busybox on every host, makes the first host the swarm's manager, joins the
// others as workers and waits until every node is ready.
func (c *testCluster) workerSwarm() {
	t := c.t
	t.Helper()
	for _, h := range c.hosts {
		if r := h.berth("import", filepath.Join(env.tmp, "busybox.tar"), busybox); r.code != 0 {
			t.Fatalf("%s: import busybox: %s", h.name, r)
		}
	}
	m := c.hosts[0]
	m.must("swarm", "init", "--advertise-addr", m.ip)
	tok := m.must("swarm", "join-token", "-q", "worker")
	for _, h := range c.hosts[1:] {
		h.must("swarm", "join", "--token", tok, m.ip+":2377")
	}
	eventually(t, 10*time.Second, func() string {
		tbl, msg := nodeTable(m)
		for _, h := range c.hosts {
			if !strings.HasPrefix(tbl[h.name], "Ready Active") {
				return fmt.Sprintf("nodes not ready: %v %s", tbl, msg)
			}
		}
		return ""
	})
}

// host returns the host called name.
func (c *testCluster) host(name string) *clusterHost {
	for _, h := range c.hosts {
		if h.name == name {
			return h
		}
	}
	c.t.Fatalf("no host %s", name)
	return nil
}

func (c *testCluster) teardown() {
	for _, h := range c.hosts {
		h.kill(syscall.SIGTERM)
	}
	killProcessesUnder(c.dir)
	var roots []string
	for _, h := range c.hosts {
		roots = append(roots, h.data, h.exec)
	}
	killContainers(roots...) // task containers outlive their berthd
	unmountUnder(c.dir)
	for _, h := range c.hosts {
		_ = exec.Command("ip", "link", "del", h.veth).Run()
		_ = exec.Command("ip", "netns", "del", h.ns).Run()
	}
	_ = exec.Command("ip", "link", "del", c.bridge).Run()
	if c.t.Failed() {
		for _, h := range c.hosts {
			if b, err := os.ReadFile(filepath.Join(c.dir, h.name, "berthd.log")); err == nil {
				c.t.Logf("--- %s's berthd log (tail):\n%s", h.name, tail(string(b), 3000))
			}
		}
	}
	if os.Getenv("BERTH_KEEP_TMP") == "" {
		_ = os.RemoveAll(c.dir)
	}
}

// start runs berthd in the host's namespaces; its own bridge and rules live in its network namespace.
func (h *clusterHost) start() {
	t := h.c.t
	t.Helper()
	lf, err := os.OpenFile(filepath.Join(h.c.dir, h.name, "berthd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	// unshare -u and sh exec in place, so cmd's pid is berthd's: kill -9 hits the daemon itself.
	// ip netns exec mounts a fresh /sys in its private mount namespace, without the cgroup2 tree
	// under it: mount it again there so task containers get their cgroups.
	h.cmd = exec.Command("ip", "netns", "exec", h.ns, "unshare", "-u", "sh", "-c",
		`{ mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup; } && hostname "$0" && exec "$@"`, h.name,
		env.berthd, "--data-root", h.data, "--exec-root", h.exec, "--log-level", "debug",
		"--registry-certs-dir", filepath.Join(h.c.dir, "certs.d"))
	h.cmd.Stdout, h.cmd.Stderr = lf, lf
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(h.cmd, h.exited)
}

func (h *clusterHost) waitUp() {
	t := h.c.t
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-h.exited:
			t.Fatalf("berthd %s exited at start", h.name)
		default:
		}
		if r := h.docker("version", "--format", "{{.Server.Version}}"); r.code == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("berthd %s did not answer within 20s", h.name)
}

// kill sends sig to the host's berthd and waits for it to exit.
func (h *clusterHost) kill(sig syscall.Signal) {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	_ = h.cmd.Process.Signal(sig)
	select {
	case <-h.exited:
	case <-time.After(15 * time.Second):
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
	h.cmd = nil
}

// restart starts the host's berthd again on the same roots.
func (h *clusterHost) restart() {
	h.start()
	h.waitUp()
}

// rssKB is the host's berthd resident set size.
func (h *clusterHost) rssKB() int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	return 0
}

func (h *clusterHost) env() []string {
	return append(os.Environ(), "DOCKER_HOST=unix://"+h.sock, "BERTH_HOST=unix://"+h.sock, "DOCKER_CONFIG="+filepath.Join(env.tmp, "docker-config"))
}

// docker runs the stock docker CLI against this host.
func (h *clusterHost) docker(args ...string) result {
	cmd := exec.Command(dockerBin(), args...)
	cmd.Env = h.env()
	return runQuiet(cmd)
}

// berth runs the berth CLI against this host.
func (h *clusterHost) berth(args ...string) result {
	cmd := exec.Command(env.berth, args...)
	cmd.Env = h.env()
	return runQuiet(cmd)
}

// must runs the docker CLI and fails the test unless it succeeds; it returns trimmed stdout.
func (h *clusterHost) must(args ...string) string {
	h.c.t.Helper()
	r := h.docker(args...)
	if r.code != 0 {
		h.c.t.Fatalf("%s: docker %s: %s", h.name, strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.stdout)
}

func runQuiet(cmd *exec.Cmd) result {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return result{out.String(), errb.String(), code}
}

// eventually retries cond every 100ms until it returns "" (success) or timeout passes; then it fails with
// cond's last complaint.
func eventually(t *testing.T, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
