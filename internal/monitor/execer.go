package monitor

import (
	"context"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/linux"
	"github.com/berth-dev/berth/internal/runtime/spec"
)

// BuiltinExecer execs into containers of Berth's own runtime with linux.Exec: the process joins the
// init's namespaces, root and cgroup, and is the monitor's child. InitPath is the helper binary to run
// (linux.ExecOptions.InitPath; "" for the monitor's own).
type BuiltinExecer struct{ InitPath string }

func (b BuiltinExecer) Exec(ctx context.Context, o ExecLaunch) (Proc, error) {
	if !builtinRuntime(o.Runtime) {
		return nil, errdefs.NotImplemented(fmt.Errorf("exec is not supported for containers run by %s", o.Runtime))
	}
	s, err := spec.ReadBundle(o.Bundle)
	if err != nil {
		return nil, errdefs.System(fmt.Errorf("exec: reading the container's bundle: %w", err))
	}
	cgroup := ""
	var filter *specs.LinuxSeccomp
	if s.Linux != nil {
		cgroup, filter = s.Linux.CgroupsPath, s.Linux.Seccomp
	}
	p, err := linux.Exec(ctx, linux.ExecOptions{
		Pid: o.Pid, Process: o.Process, CgroupsPath: cgroup, InitPath: b.InitPath, Seccomp: filter,
		Stdio: linux.Stdio{Stdin: o.Stdio.Stdin, Stdout: o.Stdio.Stdout, Stderr: o.Stdio.Stderr},
	})
	if err != nil {
		return nil, err
	}
	return execProcess{p}, nil
}

type execProcess struct{ p *linux.ExecProcess }

func (p execProcess) Pid() int { return p.p.Pid() }

func (p execProcess) Wait() (ExitStatus, error) {
	st, err := p.p.Wait()
	return ExitStatus{Code: st.Code, Signal: st.Signal}, err
}
