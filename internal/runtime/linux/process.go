package linux

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
)

// Process is a running container's main process, a child of the caller.
type Process struct {
	id  string
	cmd *exec.Cmd
	cg  cgroups.Manager
	// cgPath is the spec's cgroupsPath, the key under which a pending removal is known.
	cgPath string
	once   sync.Once
	st     ExitStatus
	err    error
	// cleaned is closed once the cgroup has been emptied and removed (or there was none); cleanErr is
	// why it could not be, readable after that.
	cleaned  chan struct{}
	cleanErr error
	// warm says a Pool's spare ran this container (for tests and debugging).
	warm bool
}

func newProcess(id string, cmd *exec.Cmd) *Process {
	return &Process{id: id, cmd: cmd, cleaned: make(chan struct{})}
}

// Pid is the process id in the caller's pid namespace.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Cgroup is the container's cgroup, for stats, pause and update.
func (p *Process) Cgroup() cgroups.Manager { return p.cg }

// Signal sends sig to the container's main process.
func (p *Process) Signal(sig syscall.Signal) error { return unix.Kill(p.Pid(), sig) }

// Wait reaps the process and checks for an OOM kill, and returns as soon as both are known: killing
// whatever is left in the cgroup and removing it happen afterwards in the background (a v1 rmdir can
// stay busy for milliseconds after the last exit), so an exit is reported without that delay.
// WaitCleanup waits for that part; a later Spawn with the same cgroup path waits for it by itself.
// Wait may be called more than once and from several goroutines; all get the same answer.
func (p *Process) Wait() (ExitStatus, error) {
	p.once.Do(func() {
		p.st, p.err = waitStatus(p.cmd)
		if p.cg == nil {
			close(p.cleaned)
			return
		}
		if oom, err := p.cg.OOMKilled(); err == nil && oom {
			p.st.OOMKilled = true
		}
		done := beginCgroupRemoval(p.cgPath)
		go func() {
			defer close(p.cleaned)
			defer done()
			_ = p.cg.Kill()
			p.cleanErr = p.cg.Destroy()
		}()
	})
	return p.st, p.err
}

// WaitCleanup blocks until the cgroup cleanup that Wait started has finished (it calls Wait first, so
// it also waits for the process) and returns why the cgroup could not be removed, if it could not.
func (p *Process) WaitCleanup(ctx context.Context) error {
	_, _ = p.Wait()
	select {
	case <-p.cleaned:
		return p.cleanErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

func waitStatus(cmd *exec.Cmd) (ExitStatus, error) {
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return ExitStatus{Code: -1}, err
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return ExitStatus{Code: cmd.ProcessState.ExitCode()}, nil
	}
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: int(ws.Signal())}, nil
	}
	return ExitStatus{Code: ws.ExitStatus()}, nil
}
