package integration

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestVersionAndInfo(t *testing.T) {
	out := mustDocker(t, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
	if out != "1.51 linux" {
		t.Errorf("docker version: %q", out)
	}
	info := mustDocker(t, "info", "--format", "{{.Driver}} {{.OSType}} {{.NCPU}} {{.DockerRootDir}}")
	if !strings.Contains(info, "linux") || !strings.Contains(info, env.dataRoot) {
		t.Errorf("docker info: %q", info)
	}
}

func TestRunEcho(t *testing.T) {
	for _, cli := range []string{"docker", "berth"} {
		t.Run(cli, func(t *testing.T) {
			var r result
			if cli == "docker" {
				r = docker(t, "run", "--rm", busybox, "echo", "hello")
			} else {
				r = berth(t, "run", "--rm", busybox, "echo", "hello")
			}
			if r.code != 0 || r.stdout != "hello\n" {
				t.Fatalf("run echo: %s", r)
			}
		})
	}
	// --rm leaves nothing behind.
	if out := mustDocker(t, "ps", "-aq", "--filter", "ancestor="+busybox, "--filter", "status=exited"); out != "" {
		// other tests may have exited containers; only fail on ones with our command
		for _, id := range strings.Fields(out) {
			if strings.Contains(mustDocker(t, "inspect", "-f", "{{.Args}}", id), "hello") {
				t.Errorf("--rm container %s still exists", id)
			}
		}
	}
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"exit3", []string{"run", "--rm", busybox, "sh", "-c", "exit 3"}, 3, ""},
		// PID 1 of a namespace ignores SIGKILL from inside; a child killed by it gives sh status 137.
		{"child-killed", []string{"run", "--rm", busybox, "sh", "-c", "sleep 10 & kill -9 $!; wait $!"}, 137, ""},
		{"notfound", []string{"run", "--rm", busybox, "nosuchcmd"}, 127, "executable file not found"},
		{"nopath", []string{"run", "--rm", busybox, "/nope/x"}, 127, "no such file or directory"},
		{"notexec", []string{"run", "--rm", busybox, "/etc/passwd"}, 126, "permission denied"},
		{"noimage", []string{"run", "--rm", "nosuchimage:1", "true"}, 125, ""},
		{"badmem", []string{"run", "--rm", "-m", "12x", busybox, "true"}, 125, "invalid"},
		{"tinymem", []string{"run", "--rm", "-m", "1m", busybox, "true"}, 125, "Minimum memory limit allowed is 6MB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := docker(t, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Fatalf("want exit %d with %q, got %s", tc.code, tc.msg, r)
			}
			rb := berth(t, tc.args...)
			if rb.code != tc.code {
				t.Fatalf("berth CLI: want exit %d, got %s", tc.code, rb)
			}
		})
	}
}

func TestFailedStartLeavesCreatedContainer(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	r := docker(t, "run", "--name", name, busybox, "nosuchcmd")
	if r.code != 127 {
		t.Fatalf("want 127: %s", r)
	}
	st := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name)
	if !strings.HasPrefix(st, "created 127") && !strings.HasPrefix(st, "exited 127") {
		t.Errorf("state after failed start: %q", st)
	}
	// Nothing is left mounted for it.
	id := mustDocker(t, "inspect", "-f", "{{.Id}}", name)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), id) {
		t.Errorf("rootfs of failed container still mounted")
	}
}

func TestConfigReachesProcess(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"env", []string{"-e", "FOO=bar", busybox, "sh", "-c", "echo $FOO"}, "bar"},
		{"envfile", []string{"--env-file", writeTemp(t, "A=1\n# comment\nB=two\n"), busybox, "sh", "-c", "echo $A$B"}, "1two"},
		{"workdir", []string{"-w", "/tmp/sub", busybox, "pwd"}, "/tmp/sub"},
		{"user", []string{"-u", "berth", busybox, "id"}, "uid=1000(berth) gid=1000(berth) groups=1000(berth),2000(extra)"},
		{"uidgid", []string{"-u", "123:456", busybox, "id", "-u"}, "123"},
		{"hostname", []string{"--hostname", "boat", busybox, "hostname"}, "boat"},
		{"entrypoint", []string{"--entrypoint", "echo", busybox, "a", "b"}, "a b"},
		{"pid1", []string{busybox, "sh", "-c", "echo $$"}, "1"},
		{"home", []string{"-u", "berth", busybox, "sh", "-c", "echo $HOME"}, "/home/berth"},
		{"path", []string{busybox, "sh", "-c", "echo $PATH"}, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := docker(t, append([]string{"run", "--rm"}, tc.args...)...)
			if r.code != 0 || strings.TrimSpace(r.stdout) != tc.want {
				t.Fatalf("want %q, got %s", tc.want, r)
			}
		})
	}
}

func TestIsolation(t *testing.T) {
	cases := []struct {
		name, script, want string
	}{
		// A file, not a pipe: with a pipe, wc may not exist yet when ps reads /proc.
		{"own-pids", "ps -o pid >/tmp/p; wc -l </tmp/p", "3"}, // header, sh (PID 1), ps
		{"masked-proc", "cat /proc/timer_list /proc/keys 2>/dev/null | wc -c", "0"},
		{"sysrq-ro", "echo x > /proc/sysrq-trigger 2>/dev/null && echo writable || echo ro", "ro"},
		{"sys-ro", "touch /sys/x 2>/dev/null && echo writable || echo ro", "ro"},
		{"no-extra-fds", "ls /proc/self/fd | wc -l", "4"}, // 0 1 2 and ls's own dirfd
		{"devices", "ls /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | wc -l", "6"},
		{"shm", "df -k /dev/shm | tail -1 | awk '{print $2}'", "65536"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := docker(t, "run", "--rm", busybox, "sh", "-c", tc.script)
			if strings.TrimSpace(r.stdout) != tc.want {
				t.Fatalf("want %q: %s", tc.want, r)
			}
		})
	}
}

func TestStdinPiped(t *testing.T) {
	r := runCmd(t, dockerCmd("run", "-i", "--rm", busybox, "cat"), "hi\nthere\n")
	if r.code != 0 || r.stdout != "hi\nthere\n" {
		t.Fatalf("docker run -i: %s", r)
	}
	r = runCmd(t, berthCmd("run", "-i", "--rm", busybox, "sh", "-c", "cat; echo done"), "x\n")
	if r.code != 0 || r.stdout != "x\ndone\n" {
		t.Fatalf("berth run -i: %s", r)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	id := mustDocker(t, "run", "-d", "--name", name, "-l", "team=berth", busybox,
		"sh", "-c", "echo out1; echo err1 >&2; trap 'echo term; exit 5' TERM; while true; do sleep 0.1; done")
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	waitFor(t, 5*time.Second, func() bool {
		return strings.Contains(docker(t, "logs", name).stdout, "out1")
	})
	r := docker(t, "logs", name)
	if r.stdout != "out1\n" || r.stderr != "err1\n" {
		t.Errorf("logs kept apart: %s", r)
	}
	if ps := mustDocker(t, "ps", "--filter", "label=team=berth", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(ps, name+" Up") {
		t.Errorf("ps: %q", ps)
	}
	if got := docker(t, "rm", name); got.code == 0 || !strings.Contains(got.stderr, "container is running") {
		t.Errorf("rm of running container: %s", got)
	}
	mustDocker(t, "stop", "-t", "5", name)
	if st := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name); st != "exited 5" {
		t.Errorf("after stop: %q", st)
	}
	if out := mustDocker(t, "wait", name); out != "5" {
		t.Errorf("wait: %q", out)
	}
	if out := mustDocker(t, "logs", "--tail", "1", name); out != "term" {
		t.Errorf("logs --tail 1: %q", out)
	}
	if ts := mustDocker(t, "logs", "-t", "--tail", "1", name); !strings.Contains(ts, "Z term") {
		t.Errorf("logs -t: %q", ts)
	}
	// restart an exited container
	mustDocker(t, "start", name)
	if st := mustDocker(t, "inspect", "-f", "{{.State.Running}}", name); st != "true" {
		t.Errorf("restarted container not running: %q", st)
	}
	mustDocker(t, "kill", "-s", "KILL", name)
	if out := mustDocker(t, "wait", name); out != "137" {
		t.Errorf("exit after kill -s KILL: %q", out)
	}
	newName := name + "-renamed"
	mustDocker(t, "rename", name, newName)
	rmOnCleanup(t, newName)
	mustDocker(t, "rm", newName)
	if r := docker(t, "inspect", newName); r.code == 0 {
		t.Errorf("container still there after rm")
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	// sh as PID 1 without a trap ignores SIGTERM, so stop must escalate to SIGKILL.
	mustDocker(t, "run", "-d", "--name", name, busybox, "sh", "-c", "while true; do sleep 0.1; done")
	start := time.Now()
	mustDocker(t, "stop", "-t", "1", name)
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("stop returned after %v, before the timeout", el)
	}
	if out := mustDocker(t, "inspect", "-f", "{{.State.ExitCode}}", name); out != "137" {
		t.Errorf("exit code %q", out)
	}
}

func TestLogsFollow(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, busybox, "sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.3; done")
	r := docker(t, "logs", "-f", name)
	if r.stdout != "line1\nline2\nline3\n" {
		t.Fatalf("logs -f: %s", r)
	}
}

func TestNameConflictAndBadInput(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "create", "--name", name, busybox, "true")
	r := docker(t, "create", "--name", name, busybox, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "is already in use by container") {
		t.Errorf("duplicate name: %s", r)
	}
	for _, args := range [][]string{
		{"start", "nosuchcontainer"},
		{"logs", "nosuchcontainer"},
		{"rm", "nosuchcontainer"},
		{"inspect", "nosuchcontainer"},
	} {
		r := docker(t, args...)
		if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "no such") {
			t.Errorf("%v: %s", args, r)
		}
	}
	r = docker(t, "create", "--name", "bad/name", busybox, "true")
	if r.code == 0 || !strings.Contains(r.stderr, "Invalid container name") {
		t.Errorf("bad name: %s", r)
	}
	r = docker(t, "run", "--rm", "--cpus", "64", busybox, "true")
	if r.code != 125 || !strings.Contains(r.stderr, "Range of CPUs") {
		t.Errorf("too many cpus: %s", r)
	}
}

func TestPsFilters(t *testing.T) {
	a, b := uniqueName(t)+"a", uniqueName(t)+"b"
	rmOnCleanup(t, a, b)
	if r := docker(t, "run", "--name", a, busybox, "sh", "-c", "exit 2"); r.code != 2 {
		t.Fatalf("exit code: %s", r)
	}
	mustDocker(t, "run", "-d", "--name", b, busybox, "sleep", "30")
	if out := mustDocker(t, "ps", "-a", "--filter", "name="+a, "--format", "{{.Status}}"); !strings.HasPrefix(out, "Exited (2)") {
		t.Errorf("exited status: %q", out)
	}
	if out := mustDocker(t, "ps", "-q", "--filter", "name="+a); out != "" {
		t.Errorf("ps without -a shows exited: %q", out)
	}
	if out := mustDocker(t, "ps", "-a", "--filter", "exited=2", "--format", "{{.Names}}"); !strings.Contains(out, a) {
		t.Errorf("exited=2 filter: %q", out)
	}
	if out := mustDocker(t, "ps", "--filter", "status=running", "--format", "{{.Names}}"); !strings.Contains(out, b) || strings.Contains(out, a) {
		t.Errorf("status=running filter: %q", out)
	}
}

func waitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v", d)
}

func writeTemp(t testing.TB, content string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}
