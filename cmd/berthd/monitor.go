package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime/linux"
)

// monitorMain runs the supervisor process with Berth's own runtime as its builtin launcher. The launcher
// keeps a spare container init ready (linux.Pool), so a default start skips the init's exec.
func monitorMain(args []string) {
	helper := initBinary()
	pool := linux.NewPool(helper)
	code := monitor.Main(args, builtinLauncher{pool, helper}, monitor.BuiltinExecer{InitPath: helper})
	if err := pool.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-monitor:", err)
	}
	os.Exit(code)
}

// initBinary is the berth-init installed next to this binary, which starts faster as a container's
// init or exec helper than this one does; "" (this binary) when there is none.
func initBinary() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), "berth-init")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
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
