package linux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/berth-dev/berth/internal/runtime/spec"
)

// InitArg0 is argv[0] of the re-executed container init; main checks for it before anything else.
const InitArg0 = "berth-init"

// Stdio are the container's standard streams; a nil file means /dev/null. For a TTY container pass the
// pty's replica as all three.
type Stdio struct{ Stdin, Stdout, Stderr *os.File }

// SpawnOptions says which bundle to run and how.
type SpawnOptions struct {
	ID string
	// Bundle is the directory holding config.json; the spec's root.path may be relative to it.
	Bundle string
	Stdio  Stdio
	// InitPath is the binary to re-execute as init; "" means /proc/self/exe.
	InitPath string
}

// ExitStatus is how a container's main process ended.
type ExitStatus struct {
	Code      int // exit code, or 128+signal when killed by a signal
	Signal    int // the killing signal, 0 if it exited
	OOMKilled bool
}

// Process is a running container's main process, a child of the caller.
type Process struct {
	id   string
	cmd  *exec.Cmd
	cg   cgroups.Manager
	once sync.Once
	st   ExitStatus
	err  error
}

// Pid is the process id in the caller's pid namespace.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Cgroup is the container's cgroup, for stats, pause and update.
func (p *Process) Cgroup() cgroups.Manager { return p.cg }

// Signal sends sig to the container's main process.
func (p *Process) Signal(sig syscall.Signal) error { return unix.Kill(p.Pid(), sig) }

// Wait reaps the process, checks for an OOM kill, kills anything left in the cgroup and removes it.
// It may be called more than once and from several goroutines; all get the same answer.
func (p *Process) Wait() (ExitStatus, error) {
	p.once.Do(func() {
		p.st, p.err = waitStatus(p.cmd)
		if p.cg == nil {
			return
		}
		if oom, err := p.cg.OOMKilled(); err == nil && oom {
			p.st.OOMKilled = true
		}
		_ = p.cg.Kill()
		if err := p.cg.Destroy(); err != nil && p.err == nil {
			p.err = err
		}
	})
	return p.st, p.err
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

var nsCloneFlag = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// Spawn starts the container described by the bundle and returns once its entrypoint has been
// execve'd, or with the error that stopped it (an *InitError wrapped with an errdefs kind when the init
// itself failed). ctx bounds the start only: cancelling it later does not touch the container.
func Spawn(ctx context.Context, o SpawnOptions) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := spec.ReadBundle(o.Bundle)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("read bundle: %w", err))
	}
	if s.Process == nil || len(s.Process.Args) == 0 || s.Root == nil || s.Linux == nil {
		return nil, errdefs.InvalidParameter(errors.New("config.json needs process.args, root and linux"))
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(o.Bundle, s.Root.Path)
	}
	var cloneFlags uintptr
	for _, ns := range s.Linux.Namespaces {
		f, ok := nsCloneFlag[ns.Type]
		if !ok || ns.Path != "" {
			continue // cgroup is unshared by the init once it is in its cgroup; paths are joined by setns
		}
		if ns.Type == specs.UserNamespace {
			return nil, errdefs.NotImplemented(errors.New("user namespaces are not supported yet"))
		}
		cloneFlags |= f
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" && ns.Type == specs.PIDNamespace {
			return nil, errdefs.NotImplemented(errors.New("joining a pid namespace is not supported yet"))
		}
	}

	initPath := o.InitPath
	if initPath == "" {
		initPath = "/proc/self/exe"
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, errdefs.System(err)
	}
	defer syncR.Close()
	defer syncW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, errdefs.System(err)
	}
	defer errR.Close()
	defer errW.Close()

	cmd := &exec.Cmd{
		Path:       initPath,
		Args:       []string{InitArg0},
		Env:        []string{"GOMAXPROCS=1"},
		Stdin:      nilIfEmpty(o.Stdio.Stdin),
		Stdout:     nilIfEmpty(o.Stdio.Stdout),
		Stderr:     nilIfEmpty(o.Stdio.Stderr),
		ExtraFiles: []*os.File{syncR, errW},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneFlags,
			Setsid:     true,
		},
	}
	if s.Process.Terminal && o.Stdio.Stdin != nil && isTerminal(o.Stdio.Stdin) {
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
	}
	if err := cmd.Start(); err != nil {
		return nil, errdefs.System(fmt.Errorf("start container init: %w", err))
	}
	syncR.Close()
	errW.Close()

	p := &Process{id: o.ID, cmd: cmd}
	fail := func(err error) (*Process, error) {
		_ = cmd.Process.Kill()
		_, _ = p.Wait()
		return nil, err
	}
	if s.Linux.CgroupsPath != "" {
		cg, err := cgroups.New(s.Linux.CgroupsPath)
		if err != nil {
			return fail(errdefs.System(err))
		}
		p.cg = cg
		if err := cg.Create(s.Linux.Resources); err != nil {
			return fail(errdefs.System(fmt.Errorf("create cgroup: %w", err)))
		}
		if err := cg.Apply(cmd.Process.Pid); err != nil {
			return fail(errdefs.System(err))
		}
	}
	// The spec goes over the pipe so the init reads exactly what was validated here, with root resolved.
	if err := json.NewEncoder(syncW).Encode(s); err != nil {
		return fail(errdefs.System(fmt.Errorf("send spec to init: %w", err)))
	}
	syncW.Close()

	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(errR)
		done <- result{b, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return fail(ctx.Err())
	}
	if r.err != nil {
		return fail(errdefs.System(r.err))
	}
	if len(r.b) > 0 {
		var ie initError
		if err := json.Unmarshal(r.b, &ie); err != nil {
			ie = initError{Kind: kindSystem, Message: string(r.b)}
		}
		return fail(ie.toError())
	}
	return p, nil
}

// nilIfEmpty keeps a nil *os.File from becoming a non-nil io.Reader/io.Writer holding nil, which exec
// would try to use instead of opening /dev/null.
func nilIfEmpty(f *os.File) interface {
	io.Reader
	io.Writer
} {
	if f == nil {
		return nil
	}
	return f
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
