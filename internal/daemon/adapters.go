package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/snapshot"
	dcontainer "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/opencontainers/go-digest"
)

// The adapters below translate between the services' own narrow interfaces. Keeping the translation
// here lets each service be written and tested against what it needs, not against its neighbours.

// imageBackend serves the API's image routes from the image service.
type imageBackend struct{ *image.Service }

func (b imageBackend) Import(ctx context.Context, src io.Reader, o api.ImportOptions) (digest.Digest, error) {
	return b.Service.Import(ctx, src, image.ImportOptions{Ref: o.Ref, Changes: o.Changes, Message: o.Message})
}

// containerBackend serves the API's container routes from the container service.
type containerBackend struct{ *container.Service }

func (b containerBackend) Create(ctx context.Context, name string, cfg *dcontainer.Config, hc *dcontainer.HostConfig, nc *network.NetworkingConfig) (dcontainer.CreateResponse, error) {
	return b.Service.Create(ctx, name, cfg, hc, nc)
}

func (b containerBackend) Attach(ctx context.Context, id string, o api.AttachOptions) (func(net.Conn) error, error) {
	return b.Service.Attach(ctx, id, container.AttachOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Stream: o.Stream, Logs: o.Logs})
}

// imageResolver gives the container service what it needs of an image.
type imageResolver struct{ s *image.Service }

func (r imageResolver) Resolve(ctx context.Context, ref string) (container.Image, error) {
	img, err := r.s.Get(ctx, ref)
	if err != nil {
		return container.Image{}, err
	}
	return container.Image{ID: img.ID.String(), ChainID: img.ChainID, Config: img.Config.Config}, nil
}

// rootfsManager gives containers their writable layers from the snapshotter.
type rootfsManager struct{ sn snapshot.Snapshotter }

func (m rootfsManager) Prepare(ctx context.Context, id, parent string) error {
	_, err := m.sn.Prepare(ctx, id, parent)
	return err
}

func (m rootfsManager) Mount(ctx context.Context, id, target string) error {
	mounts, err := m.sn.Mounts(ctx, id)
	if err != nil {
		return err
	}
	return snapshot.MountAll(mounts, target)
}

func (m rootfsManager) Unmount(target string) error { return snapshot.Unmount(target) }

func (m rootfsManager) Remove(ctx context.Context, id string) error {
	err := m.sn.Remove(ctx, id)
	if err != nil && errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// monitorAdapter speaks to the monitor for the container service.
type monitorAdapter struct{ c *monitor.Client }

func (m monitorAdapter) Create(ctx context.Context, r container.CreateRequest) error {
	return m.c.Create(ctx, monitor.CreateOptions{ID: r.ID, Bundle: r.Bundle, Runtime: r.Runtime, LogPath: r.LogPath, OpenStdin: r.OpenStdin, StdinOnce: r.StdinOnce, Tty: r.Tty})
}

func (m monitorAdapter) Start(ctx context.Context, id string) (int, error) { return m.c.Start(ctx, id) }

func (m monitorAdapter) Kill(ctx context.Context, id string, sig int) error {
	return m.c.Kill(ctx, id, syscall.Signal(sig))
}

func (m monitorAdapter) State(ctx context.Context, id string) (container.ProcState, error) {
	st, err := m.c.State(ctx, id)
	return procState(st), err
}

func (m monitorAdapter) List(ctx context.Context) ([]container.ProcState, error) {
	sts, err := m.c.List(ctx)
	out := make([]container.ProcState, 0, len(sts))
	for _, st := range sts {
		out = append(out, procState(st))
	}
	return out, err
}

func procState(st monitor.State) container.ProcState {
	return container.ProcState{ID: st.ID, Pid: st.Pid, Status: st.Status, ExitCode: st.ExitCode, OOMKilled: st.OOMKilled, StartedAt: st.StartedAt, FinishedAt: st.FinishedAt}
}

func (m monitorAdapter) Delete(ctx context.Context, id string) error { return m.c.Delete(ctx, id) }

func (m monitorAdapter) Events(ctx context.Context) (<-chan container.Exit, error) {
	in, err := m.c.Events(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan container.Exit)
	go func() {
		defer close(out)
		for e := range in {
			out <- container.Exit{ID: e.ID, ExitCode: e.ExitCode, OOMKilled: e.OOMKilled, FinishedAt: e.FinishedAt}
		}
	}()
	return out, nil
}

func (m monitorAdapter) Attach(ctx context.Context, id string, stdin, stdout, stderr bool) (*net.UnixConn, error) {
	c, err := m.c.Attach(ctx, id, stdin, stdout, stderr)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("monitor attach did not give a unix connection")
	}
	return uc, nil
}
