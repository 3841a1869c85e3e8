package linux

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/linux/nsenter"
	"github.com/berth-dev/berth/internal/runtime/spec"
)

// execIn runs args in the container whose init is pid and returns its output and exit status.
func execIn(t *testing.T, pid int, cgroup string, p specs.Process) (string, ExitStatus, error) {
	t.Helper()
	// The exec'd process is reparented to us when its helper exits: we must be a subreaper to wait for it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, _ := os.Pipe()
	defer r.Close()
	var out bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = io.Copy(&out, r) }()
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	if p.Env == nil {
		p.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ep, err := Exec(ctx, ExecOptions{Pid: pid, Process: &p, CgroupsPath: cgroup, InitPath: exe, Stdio: Stdio{Stdout: w, Stderr: w}})
	w.Close()
	if err != nil {
		wg.Wait()
		return out.String(), ExitStatus{}, err
	}
	st, err := ep.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	wg.Wait()
	return out.String(), st, nil
}

func TestExecJoinsTheContainer(t *testing.T) {
	if !nsenter.Available {
		t.Skip("built without cgo")
	}
	p, _, err := start(t, spec.Options{Args: []string{"sleep", "100"}, Hostname: "inside"})
	if err != nil {
		t.Fatal(err)
	}
	id := testID(t)
	script := "hostname; cat /proc/1/cmdline; echo; [ \"$(cat /proc/self/cgroup)\" = \"$(cat /proc/1/cgroup)\" ] && echo samecg; ls /proc | grep -c '^[0-9]'; id -u; exit 7"
	out, st, err := execIn(t, p.Pid(), cgroupPath(id), specs.Process{Args: []string{"sh", "-c", script}, User: specs.User{UID: 1000, GID: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 7 {
		t.Fatalf("exit code %d, output %q", st.Code, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || lines[0] != "inside" || !strings.HasPrefix(lines[1], "sleep\x00100") || lines[2] != "samecg" || lines[4] != "1000" {
		t.Fatalf("unexpected output %q", out)
	}
	// Only the container's processes are visible: sleep, sh, and the pipeline's commands.
	if lines[3] == "" || len(lines[3]) > 1 {
		t.Fatalf("the exec sees %s processes: not in the container's pid namespace", lines[3])
	}
}

func TestExecMissingBinary(t *testing.T) {
	if !nsenter.Available {
		t.Skip("built without cgo")
	}
	p, _, err := start(t, spec.Options{Args: []string{"sleep", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = execIn(t, p.Pid(), "", specs.Process{Args: []string{"nosuchbinary"}})
	var ie *InitError
	if err == nil || !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "executable file not found in $PATH") {
		t.Fatalf("got %v", err)
	}
	if !errors.As(err, &ie) || ie.ExitCode() != 127 {
		t.Fatalf("got %#v", err)
	}
}

func TestExecLeaksNoFds(t *testing.T) {
	if !nsenter.Available {
		t.Skip("built without cgo")
	}
	p, _, err := start(t, spec.Options{Args: []string{"sleep", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	// A descriptor of ours without close-on-exec must still not reach the process.
	f, err := os.Open("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, e := unix.Syscall(unix.SYS_FCNTL, f.Fd(), unix.F_SETFD, 0); e != 0 {
		t.Fatal(e)
	}
	out, _, err := execIn(t, p.Pid(), "", specs.Process{Args: []string{"ls", "/proc/self/fd"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(out); strings.Join(got, " ") != "0 1 2 3" { // 3 is ls's own directory fd
		t.Fatalf("fds in the exec'd process: %q", got)
	}
}
