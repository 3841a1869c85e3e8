package main

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime/linux"
)

// monitorMain runs the supervisor process with Berth's own runtime as its builtin launcher. The launcher
// keeps a spare container init ready (linux.Pool), so a default start skips the init's exec.
func monitorMain(args []string) {
	helper := daemon.InstalledInit() // "": this binary plays the part
	pool := linux.NewPool(helper)
	code := monitor.Main(args, builtinLauncher{pool, helper}, monitor.BuiltinExecer{InitPath: helper})
	if err := pool.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-monitor:", err)
	}
	os.Exit(code)
}

// builtinLauncher starts containers with internal/runtime/linux: the container's init is the monitor's
// direct child (this binary re-executed as berth-init, or a spare of the pool), so the monitor reaps it
// and reads its real exit status, OOM kill included.
type builtinLauncher struct {
	pool     *linux.Pool
	initPath string
}

func (l builtinLauncher) Launch(ctx context.Context, id, bundle, runtime string, stdio monitor.Stdio) (monitor.Proc, error) {
	p, err := l.pool.Spawn(ctx, linux.SpawnOptions{
		ID: id, Bundle: bundle, InitPath: l.initPath,
		Stdio: linux.Stdio{Stdin: stdio.Stdin, Stdout: stdio.Stdout, Stderr: stdio.Stderr},
	})
	if err != nil {
		return nil, err
	}
	return proc{p}, nil
}

type proc struct{ p *linux.Process }

func (p proc) Pid() int { return p.p.Pid() }

// Wait returns once the exit status and OOM state are known; the cgroup is removed in the background.
func (p proc) Wait() (monitor.ExitStatus, error) {
	st, err := p.p.Wait()
	return monitor.ExitStatus{Code: st.Code, Signal: st.Signal, OOMKilled: st.OOMKilled}, err
}
