package daemon

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/docker/docker/api/types/backend"
	dcontainer "github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/monitor"
)

// The exec routes and TTY sizing: the API finds ExecBackend on the container backend, and the container
// service finds container.ExecMonitor on its monitor.
var (
	_            api.ExecBackend       = containerBackend{}
	_            container.ExecMonitor = monitorAdapter{}
	_            container.ExecMonitor = (*monitorAdapter)(nil)
	execServices sync.Map              // *container.Service -> *container.ExecService
)

// execs is the one exec service of a container service: exec records live in it.
func (b containerBackend) execs() *container.ExecService {
	if x, ok := execServices.Load(b.Service); ok {
		return x.(*container.ExecService)
	}
	x, _ := execServices.LoadOrStore(b.Service, container.NewExecService(b.Service))
	return x.(*container.ExecService)
}

func (b containerBackend) ExecCreate(ctx context.Context, ref string, cfg dcontainer.ExecOptions) (string, error) {
	return b.execs().Create(ctx, ref, cfg)
}

func (b containerBackend) ExecStart(ctx context.Context, id string, o dcontainer.ExecStartOptions) (func(net.Conn) error, error) {
	return b.execs().Start(ctx, id, container.ExecStartOptions{Detach: o.Detach, ConsoleSize: o.ConsoleSize})
}

func (b containerBackend) ExecInspect(ctx context.Context, id string) (*backend.ExecInspect, error) {
	return b.execs().Inspect(ctx, id)
}

func (b containerBackend) ExecResize(ctx context.Context, id string, height, width uint) error {
	return b.execs().Resize(ctx, id, height, width)
}

func (m monitorAdapter) Exec(ctx context.Context, r container.ExecRequest) (container.ExecProcState, *net.UnixConn, error) {
	o := monitor.ExecOptions{ID: r.ID, ExecID: r.ExecID, Process: r.Process, Tty: r.Tty, OpenStdin: r.OpenStdin,
		Height: clampSize(r.Height), Width: clampSize(r.Width)}
	if r.Attach {
		o.Attach = &monitor.AttachOptions{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr}
	}
	st, conn, err := m.c.Exec(ctx, o)
	if err != nil {
		return container.ExecProcState{}, nil, err
	}
	var uc *net.UnixConn
	if conn != nil {
		var ok bool
		if uc, ok = conn.(*net.UnixConn); !ok {
			conn.Close()
			return container.ExecProcState{}, nil, errors.New("monitor exec did not give a unix connection")
		}
	}
	return execProcState(st), uc, nil
}

func (m monitorAdapter) ExecState(ctx context.Context, id, execID string) (container.ExecProcState, error) {
	st, err := m.c.ExecState(ctx, id, execID)
	return execProcState(st), err
}

func (m monitorAdapter) Resize(ctx context.Context, id, execID string, height, width uint) error {
	return m.c.Resize(ctx, id, execID, clampSize(height), clampSize(width))
}

func execProcState(st monitor.ExecState) container.ExecProcState {
	return container.ExecProcState{Pid: st.Pid, Running: st.Running, ExitCode: st.ExitCode}
}

func clampSize(v uint) uint16 {
	if v > 0xffff {
		return 0xffff
	}
	return uint16(v)
}
