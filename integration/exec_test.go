package integration

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// execTarget starts a long-running container for exec tests.
func execTarget(t *testing.T, extra ...string) (name, id string) {
	t.Helper()
	name = uniqueName(t)
	rmOnCleanup(t, name)
	args := append(append([]string{"run", "-d", "--name", name, "-h", "inexec"}, extra...), busybox, "sh", "-c", "echo made > /made; exec sleep 1000")
	id = mustDocker(t, args...)
	waitFor(t, 10*time.Second, func() bool { return docker(t, "exec", name, "test", "-e", "/made").code == 0 })
	return name, id
}

func TestExecBasics(t *testing.T) {
	name, _ := execTarget(t)
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte("FROMFILE=yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"echo", "hello"}, "hello", 0},
		{[]string{"sh", "-c", "exit 3"}, "", 3},
		{[]string{"-u", "berth", "id"}, "uid=1000(berth) gid=1000(berth) groups=1000(berth),2000(extra)", 0},
		{[]string{"-u", "1000:2000", "sh", "-c", "id -u; id -g"}, "1000\n2000", 0},
		{[]string{"-w", "/tmp", "pwd"}, "/tmp", 0},
		{[]string{"-e", "A=1", "--env-file", envFile, "sh", "-c", "echo $A $FROMFILE $PATH"}, "1 yes /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 0},
		// It joins the container: its hostname, its pid 1, its files.
		{[]string{"hostname"}, "inexec", 0},
		{[]string{"sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"}, "sleep 1000", 0},
		{[]string{"cat", "/made"}, "made", 0},
		{[]string{"sh", "-c", "[ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo same"}, "same", 0},
		// Nothing of berthd's or the monitor's reaches it: stdio and ls's own directory only.
		{[]string{"ls", "/proc/self/fd"}, "0\n1\n2\n3", 0},
	} {
		// Flags come before the container's name: split them off the front.
		i := 0
		for i < len(tc.args) && strings.HasPrefix(tc.args[i], "-") {
			i += 2
		}
		args := append(append(append([]string{"exec"}, tc.args[:i]...), name), tc.args[i:]...)
		r := docker(t, args...)
		if r.code != tc.code || strings.TrimSpace(r.stdout) != tc.want {
			t.Errorf("exec %v: %s", tc.args, r)
		}
	}
	// stderr stays apart.
	if r := docker(t, "exec", name, "sh", "-c", "echo out; echo err >&2"); r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("streams: %s", r)
	}
	// stdin with -i, EOF included.
	if r := runCmd(t, dockerCmd("exec", "-i", name, "sh", "-c", "cat; echo done"), "piped\n"); r.stdout != "piped\ndone\n" {
		t.Errorf("exec -i: %s", r)
	}
	// Files written by one exec are seen by the next and by the container.
	mustDocker(t, "exec", name, "sh", "-c", "echo shared > /tmp/f")
	if got := mustDocker(t, "exec", name, "cat", "/tmp/f"); got != "shared" {
		t.Errorf("got %q", got)
	}
}

func TestExecCapabilities(t *testing.T) {
	name, _ := execTarget(t)
	plain := mustDocker(t, "exec", name, "sh", "-c", "grep CapEff /proc/self/status")
	priv := mustDocker(t, "exec", "--privileged", name, "sh", "-c", "grep CapEff /proc/self/status")
	if plain == priv || !strings.HasSuffix(priv, "ff") {
		t.Fatalf("plain %q, privileged %q", plain, priv)
	}
	// A non-root user has no effective capabilities, and no_new_privs comes from the container.
	if got := mustDocker(t, "exec", "-u", "berth", name, "sh", "-c", "grep CapEff /proc/self/status"); !strings.HasSuffix(got, "0000000000000000") {
		t.Fatalf("berth's caps: %q", got)
	}
}

func TestExecErrors(t *testing.T) {
	name, _ := execTarget(t)
	r := docker(t, "exec", name, "nosuchbinary")
	if r.code != 127 || !strings.Contains(r.stdout+r.stderr, `OCI runtime exec failed: exec failed: unable to start container process: exec: "nosuchbinary": executable file not found in $PATH: unknown`) {
		t.Errorf("missing binary: %s", r)
	}
	if r := docker(t, "exec", name, "/etc/passwd"); r.code != 126 {
		t.Errorf("not executable: %s", r)
	}
	stopped := uniqueName(t)
	rmOnCleanup(t, stopped)
	id := mustDocker(t, "create", "--name", stopped, busybox, "true")
	r = docker(t, "exec", stopped, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "container "+id+" is not running") {
		t.Errorf("exec into a created container: %s", r)
	}
	if r := docker(t, "exec", "nosuchcontainer", "true"); r.code == 0 || !strings.Contains(r.stderr, "No such container: nosuchcontainer") {
		t.Errorf("exec into a missing container: %s", r)
	}
}

// TestExecDetachedAndInspect uses the SDK: a detached exec runs in the container's cgroup, inspect shows
// it running with its pid, and then its exit code.
func TestExecDetachedAndInspect(t *testing.T) {
	name, id := execTarget(t)
	c := sdk(t)
	ctx := ctxT(t, 30*time.Second)
	resp, err := c.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: []string{"sh", "-c", "sleep 1; exit 4"}, User: "berth"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ContainerExecStart(ctx, resp.ID, container.ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	info, err := c.ContainerExecInspect(ctx, resp.ID)
	if err != nil || !info.Running || info.Pid <= 0 || info.ContainerID != id {
		t.Fatalf("%+v %v", info, err)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(info.Pid) + "/cgroup")
	if err != nil || !strings.Contains(string(b), id) {
		t.Fatalf("exec's cgroup: %q %v", b, err)
	}
	waitFor(t, 10*time.Second, func() bool {
		info, err = c.ContainerExecInspect(ctx, resp.ID)
		return err == nil && !info.Running
	})
	if info.ExitCode != 4 {
		t.Fatalf("%+v", info)
	}
	// The raw JSON has Docker's fields.
	raw := mustDockerAPI(t, "/exec/"+resp.ID+"/json")
	for _, k := range []string{`"ProcessConfig":{"tty":false,"entrypoint":"sh","arguments":["-c","sleep 1; exit 4"],"user":"berth"}`, `"OpenStdin":false`, `"ExitCode":4`} {
		if !strings.Contains(raw, k) {
			t.Errorf("exec json lacks %s: %s", k, raw)
		}
	}
	if _, err := c.ContainerExecInspect(ctx, "nosuchexec"); err == nil || !strings.Contains(err.Error(), "No such exec instance") {
		t.Errorf("unknown exec: %v", err)
	}
	// docker exec -d returns at once.
	start := time.Now()
	mustDocker(t, "exec", "-d", name, "sleep", "5")
	if time.Since(start) > 3*time.Second {
		t.Errorf("exec -d waited for the process")
	}
}

// TestExecTTY runs `docker exec -it sh` on a real terminal.
func TestExecTTY(t *testing.T) {
	name, _ := execTarget(t)
	s := startPty(t, dockerCmd("exec", "-it", name, "sh"), 27, 91)
	at := s.expect(0, "# ")
	s.send("tty; stty size; echo $TERM\r")
	at = s.expect(at, "/dev/pts/")
	at = s.expect(at, "27 91\r\nxterm\r\n")
	s.send("exit 5\r")
	if code := s.wait(); code != 5 {
		t.Fatalf("exit %d: %q", code, s.output())
	}
	_ = at
}

// mustDockerAPI GETs path from berthd's API and returns the body.
func mustDockerAPI(t *testing.T, path string) string {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", env.sock)
	}}}
	resp, err := hc.Get("http://berth" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, b, err)
	}
	return string(b)
}
