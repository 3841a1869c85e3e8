package monitor

import (
	"context"
	"os"
	"os/exec"
	"syscall"
)

// Stdio is what a container's process gets as fds 0, 1 and 2. The monitor closes its copies once Launch
// returns, so the Launcher must have passed them on (or dup'ed them) by then.
type Stdio struct{ Stdin, Stdout, Stderr *os.File }

// ExitStatus is how a container's process ended. Code follows the shell's convention (128+signal when
// killed), which is what Docker reports as the exit code.
type ExitStatus struct {
	Code      int
	Signal    int
	OOMKilled bool
}

// Proc is a launched container process.
type Proc interface {
	// Pid is the container's init as seen from the host: what kill signals.
	Pid() int
	// Wait blocks until the container's init has exited and reaps it (and any helper process the
	// Launcher started for it).
	Wait() (ExitStatus, error)
}

// HelperProc is a Proc whose Launcher keeps a helper process (an OCI runtime run in the foreground)
// between the monitor and the container's init. The helper is the monitor's child and is reaped by Wait,
// so the monitor's orphan reaper must leave it alone.
type HelperProc interface {
	Proc
	HelperPid() int
}

// Launcher starts containers. The monitor does not care how: Berth's builtin runtime, an OCI runtime
// binary (RuncLauncher), or, in tests, a plain host process.
type Launcher interface {
	// Launch starts the container in bundle with stdio and returns once the container's process runs its
	// entrypoint, or with the start error, whose text reaches berthd unchanged. The process must run in a
	// session of its own so nothing that happens to the monitor signals it.
	Launch(ctx context.Context, id, bundle, runtime string, stdio Stdio) (Proc, error)
}

// CmdProc adapts a started command to Proc, for launchers whose child is the container's init.
func CmdProc(cmd *exec.Cmd) Proc { return cmdProc{cmd} }

type cmdProc struct{ cmd *exec.Cmd }

func (p cmdProc) Pid() int { return p.cmd.Process.Pid }

func (p cmdProc) Wait() (ExitStatus, error) {
	err := p.cmd.Wait()
	if p.cmd.ProcessState == nil {
		return ExitStatus{Code: -1}, err
	}
	return ExitStatusOf(p.cmd.ProcessState), nil
}

// ExitStatusOf converts a reaped process's state into an ExitStatus.
func ExitStatusOf(ps *os.ProcessState) ExitStatus {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return ExitStatus{Code: ps.ExitCode()}
	}
	return exitStatusFromWait(ws)
}

func exitStatusFromWait(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		sig := int(ws.Signal())
		return ExitStatus{Code: 128 + sig, Signal: sig}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}
