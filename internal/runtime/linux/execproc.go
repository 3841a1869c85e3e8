package linux

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/berth-dev/berth/internal/runtime/linux/nsenter"
)

// ExecArg0 is argv[0] of the helper that becomes a process exec'd into a running container.
const ExecArg0 = "berth-exec"

// Fds of the exec helper (ExtraFiles start at 3): syncFd and errFd as for the init, then the pipe the
// nsenter constructor reports the forked child's pid on.
const execReportFd = 5

func init() {
	// The exec helper is done before main runs: it must not start anything of the daemon's, and nothing
	// in main needs to know it exists. Everything it uses is this package's and initialised by now.
	if len(os.Args) > 0 && os.Args[0] == ExecArg0 {
		runtime.LockOSThread()
		execMain()
	}
}

// ExecOptions says which container to enter and what to run there.
type ExecOptions struct {
	// Pid is the container's init, in the caller's pid namespace: its namespaces and root are joined.
	Pid int
	// Process is what to run, as in config.json: args, env, cwd, user, capabilities, rlimits,
	// no_new_privileges and terminal (which makes stdin the process's controlling terminal).
	Process *specs.Process
	// CgroupsPath is the container's cgroup ("/berth/<id>"); the process is moved into it before it runs
	// anything of its own. Empty leaves it in the caller's cgroup.
	CgroupsPath string
	// Seccomp is the container's filter (its config.json's linux.seccomp), loaded last before execve.
	Seccomp *specs.LinuxSeccomp
	Stdio   Stdio
	// InitPath is the binary to re-execute as the helper; "" means /proc/self/exe.
	InitPath string
}

// ExecProcess is a process started in a running container. Its parent is the caller of Exec, which must
// be a child subreaper (see package nsenter), so Wait gets the real exit status.
type ExecProcess struct {
	pid  int
	once sync.Once
	st   ExitStatus
	err  error
}

// Pid is the process id in the caller's pid namespace.
func (p *ExecProcess) Pid() int { return p.pid }

// Wait reaps the process. It may be called more than once; all callers get the same answer.
func (p *ExecProcess) Wait() (ExitStatus, error) {
	p.once.Do(func() { p.st, p.err = wait4(p.pid) })
	return p.st, p.err
}

func wait4(pid int) (ExitStatus, error) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return ExitStatus{Code: -1}, err
		}
		if ws.Signaled() {
			return ExitStatus{Code: 128 + int(ws.Signal()), Signal: int(ws.Signal())}, nil
		}
		return ExitStatus{Code: ws.ExitStatus()}, nil
	}
}

// Exec starts o.Process inside the running container whose init is o.Pid: its pid, mount, network, IPC,
// UTS and cgroup namespaces, its root and its cgroup, with the process's user, groups, capabilities and
// no_new_privs. It returns once the program has been execve'd, or with the reason it could not be (an
// *InitError, kind InvalidParameter, for a missing or non-executable program). No fd of the caller
// other than o.Stdio reaches the process.
func Exec(ctx context.Context, o ExecOptions) (*ExecProcess, error) {
	if !nsenter.Available {
		return nil, errdefs.NotImplemented(errors.New("exec needs a berthd built with cgo (it joins namespaces before the Go runtime starts)"))
	}
	if o.Process == nil || len(o.Process.Args) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("exec: no command given"))
	}
	if o.Pid <= 0 {
		return nil, errdefs.InvalidParameter(errors.New("exec: the container has no process"))
	}
	initPath, err := protectedExe(o.InitPath)
	if err != nil {
		return nil, errdefs.System(err)
	}
	var pipes [3][2]*os.File // sync, err, report: [read, write]
	for i := range pipes {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, errdefs.System(err)
		}
		defer r.Close()
		defer w.Close()
		pipes[i] = [2]*os.File{r, w}
	}
	syncR, syncW := pipes[0][0], pipes[0][1]
	errR, errW := pipes[1][0], pipes[1][1]
	reportR, reportW := pipes[2][0], pipes[2][1]

	cmd := &exec.Cmd{
		Path: initPath,
		Args: []string{ExecArg0},
		Env: []string{"GOMAXPROCS=1",
			nsenter.EnvPid + "=" + strconv.Itoa(o.Pid),
			nsenter.EnvPipe + "=" + strconv.Itoa(execReportFd)},
		Stdin:      nilIfEmpty(o.Stdio.Stdin),
		Stdout:     nilIfEmpty(o.Stdio.Stdout),
		Stderr:     nilIfEmpty(o.Stdio.Stderr),
		ExtraFiles: []*os.File{syncR, errW, reportW},
	}
	if err := cmd.Start(); err != nil {
		return nil, errdefs.System(fmt.Errorf("start exec helper: %w", err))
	}
	syncR.Close()
	errW.Close()
	reportW.Close()

	// The helper joins the namespaces, forks and exits; its child, now in the container, is ours to wait
	// for once the helper is reaped (reparenting happens as the helper exits).
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	report, rerr := bufio.NewReader(reportR).ReadString('\n')
	werr := cmd.Wait()
	stop()
	if ctx.Err() != nil {
		if pid := reportedPid(report); pid > 0 {
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = wait4(pid)
		}
		return nil, ctx.Err()
	}
	if msg, ok := strings.CutPrefix(report, "E"); ok {
		return nil, errdefs.System(fmt.Errorf("exec: joining the container: %s", strings.TrimSpace(msg)))
	}
	pid := reportedPid(report)
	if pid <= 0 {
		return nil, errdefs.System(fmt.Errorf("exec helper failed (%v, %v): reported %q", werr, rerr, report))
	}
	p := &ExecProcess{pid: pid}
	fail := func(err error) (*ExecProcess, error) {
		_ = unix.Kill(pid, unix.SIGKILL)
		_, _ = p.Wait()
		return nil, err
	}
	if o.CgroupsPath != "" {
		cg, err := cgroups.New(o.CgroupsPath)
		if err != nil {
			return fail(errdefs.System(err))
		}
		if err := cg.Apply(pid); err != nil {
			return fail(errdefs.System(fmt.Errorf("join the container's cgroup: %w", err)))
		}
	}
	if err := json.NewEncoder(syncW).Encode(execJob{Process: o.Process, Seccomp: o.Seccomp}); err != nil {
		return fail(errdefs.System(fmt.Errorf("send process to exec helper: %w", err)))
	}
	syncW.Close()
	b, err := io.ReadAll(errR)
	if err != nil {
		return fail(errdefs.System(err))
	}
	if len(b) > 0 {
		var ie initError
		if err := json.Unmarshal(b, &ie); err != nil {
			ie = initError{Kind: kindSystem, Message: string(b)}
		}
		_, _ = p.Wait()
		return nil, ie.toError()
	}
	return p, nil
}

// execJob is what the exec helper reads from its sync pipe.
type execJob struct {
	Process *specs.Process      `json:"process"`
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
}

func reportedPid(report string) int {
	s, ok := strings.CutPrefix(strings.TrimSpace(report), "P")
	if !ok {
		return 0
	}
	pid, _ := strconv.Atoi(s)
	return pid
}

// execMain is the exec'd process between Go's start (inside the container, see package nsenter) and
// execve: it reads the process from the sync pipe, takes its own session (and its terminal), applies
// rlimits and the process's credentials and capabilities, then execs. It never returns.
func execMain() {
	unix.CloseOnExec(errFd)
	errPipe := os.NewFile(errFd, "error-pipe")
	syncPipe := os.NewFile(syncFd, "sync-pipe")
	var job execJob
	if err := json.NewDecoder(syncPipe).Decode(&job); err != nil || job.Process == nil {
		os.Exit(1) // Exec gave up on us
	}
	p := *job.Process
	syncPipe.Close()
	// Its own session: nothing sent to the monitor's process group reaches it, and a terminal can
	// become its controlling terminal.
	if _, err := unix.Setsid(); err != nil {
		reportAndExit(errPipe, kindSystem, fmt.Errorf("setsid: %w", err))
	}
	if p.Terminal {
		if _, _, e := unix.RawSyscall(unix.SYS_IOCTL, 0, unix.TIOCSCTTY, 0); e != 0 {
			reportAndExit(errPipe, kindSystem, fmt.Errorf("set controlling terminal: %w", e))
		}
	}
	if err := setRlimits(p.Rlimits); err != nil {
		reportAndExit(errPipe, kindSystem, err)
	}
	kind, err := finalizeAndExec(&specs.Spec{Process: &p, Linux: &specs.Linux{Seccomp: job.Seccomp}})
	reportAndExit(errPipe, kind, err)
}
