package main

import (
	"context"
	"os"

	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime/linux"
)

// monitorMain runs the supervisor process with Berth's own runtime as its builtin launcher.
func monitorMain(args []string) {
	os.Exit(monitor.Main(args, builtinLauncher{}))
}

// builtinLauncher starts containers with internal/runtime/linux: the container's init is the monitor's
// direct child (this binary re-executed as berth-init), so the monitor reaps it and reads its real exit
// status, OOM kill included.
type builtinLauncher struct{}

func (builtinLauncher) Launch(ctx context.Context, id, bundle, runtime string, stdio monitor.Stdio) (monitor.Proc, error) {
	p, err := linux.Spawn(ctx, linux.SpawnOptions{
		ID: id, Bundle: bundle,
		Stdio: linux.Stdio{Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr},
	})
	if err != nil {
		return nil, err
	}
	return proc{p}, nil
}

type proc struct{ p *linux.Process }

func (p proc) Pid() int { return p.p.Pid() }

func (p proc) Wait() (monitor.ExitStatus, error) {
	st, err := p.p.Wait()
	return monitor.ExitStatus{Code: st.Code, Signal: st.Signal, OOMKilled: st.OOMKilled}, err
}
