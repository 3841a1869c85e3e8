package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime/userns"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/volume"
	dcontainer "github.com/docker/docker/api/types/container"
	eventtypes "github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	dvolume "github.com/docker/docker/api/types/volume"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
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
	return b.Service.Attach(ctx, id, container.AttachOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Stream: o.Stream, Logs: o.Logs, DetachKeys: o.DetachKeys})
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
type rootfsManager struct {
	sn snapshot.Snapshotter
	// remap is the daemon's --userns-remap, nil without it.
	remap *userns.Remap
}

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

// MountRemapped mounts the container's layers through idmapped mounts (see userns.Remap.MountOverlay);
// a layer that is a plain directory (the copying snapshotter, an image without layers) is an idmapped
// bind.
func (m rootfsManager) MountRemapped(ctx context.Context, id, target string, rm *userns.Remap) error {
	mounts, err := m.sn.Mounts(ctx, id)
	if err != nil {
		return err
	}
	if len(mounts) != 1 {
		return errdefs.System(fmt.Errorf("container %s: expected one mount for its rootfs, got %d", id, len(mounts)))
	}
	mt := mounts[0]
	if !rm.IDMapped {
		return mountShifted(mt, target, rm)
	}
	if mt.Type != "overlay" {
		return rm.BindIDMapped(mt.Source, target, true)
	}
	var lowers, opts []string
	var upper, work string
	var flags uintptr
	for _, o := range mt.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			lowers = strings.Split(v, ":")
		case "upperdir":
			upper = v
		case "workdir":
			work = v
		case "ro":
			flags |= unix.MS_RDONLY
		case "rw":
		default:
			opts = append(opts, o)
		}
	}
	return rm.MountOverlay(target, lowers, upper, work, opts, flags)
}

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
	return m.c.Create(ctx, monitor.CreateOptions{ID: r.ID, Bundle: r.Bundle, Runtime: r.Runtime, LogPath: r.LogPath, OpenStdin: r.OpenStdin, StdinOnce: r.StdinOnce, Tty: r.Tty,
		Height: clampSize(r.Height), Width: clampSize(r.Width)})
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

// The container service serves the pause, restart, top, stats and update routes as it is.
var _ api.LifecycleBackend = containerBackend{}

// eventsBackend serves GET /events from the event bus.
type eventsBackend struct{ bus *events.Bus }

func (b eventsBackend) Events(ctx context.Context, o api.EventOptions) (func(func(eventtypes.Message) error) error, error) {
	opts, err := events.ParseStreamOptions(o.Since, o.Until, o.Filters)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	return func(emit func(eventtypes.Message) error) error { return b.bus.Stream(ctx, opts, emit) }, nil
}

// The container service serves the cp, diff, export and commit routes; these two translate options.
var _ api.FilesystemBackend = containerBackend{}

func (b containerBackend) ExtractToDir(ctx context.Context, id, path string, o api.ExtractOptions, src io.Reader) error {
	return b.Service.ExtractToDir(ctx, id, path, container.ExtractOptions{NoOverwriteDirNonDir: o.NoOverwriteDirNonDir, CopyUIDGID: o.CopyUIDGID}, src)
}

func (b containerBackend) Commit(ctx context.Context, id string, o api.CommitOptions) (string, error) {
	return b.Service.Commit(ctx, id, container.CommitOptions{Ref: o.Ref, Comment: o.Comment, Author: o.Author, Changes: o.Changes, Pause: o.Pause, Config: o.Config})
}

// CommitImage writes a committed container's image (container.ImageCommitter).
func (r imageResolver) CommitImage(ctx context.Context, c container.CommitImage) (string, error) {
	id, err := r.s.Commit(ctx, image.CommitOptions{Parent: c.ParentID, Layer: c.Layer, Config: c.Config, Changes: c.Changes,
		Ref: c.Ref, Author: c.Author, Comment: c.Comment, ContainerID: c.ContainerID})
	return id.String(), err
}

// LayerDirs reads where a container's layer lives from the mounts the snapshotter gives it
// (container.LayerLocator).
func (m rootfsManager) layerDirs(ctx context.Context, id string) (container.LayerDirs, error) {
	mounts, err := m.sn.Mounts(ctx, id)
	if err != nil || len(mounts) != 1 {
		return container.LayerDirs{}, errdefs.System(fmt.Errorf("container %s: no single writable layer: %v", id, err))
	}
	mt := mounts[0]
	if mt.Type == "overlay" {
		d := container.LayerDirs{Overlay: true}
		for _, o := range mt.Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				d.Upper = v
			} else if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				d.Lowers = strings.Split(v, ":")
			}
		}
		return d, nil
	}
	// A bind mount: the copying snapshotter's whole tree, or an overlay container of an image without
	// layers. The image's tree, if any, is the parent snapshot's.
	d := container.LayerDirs{Upper: mt.Source}
	info, err := m.sn.Stat(ctx, id)
	if err != nil || info.Parent == "" {
		return d, err
	}
	pm, err := m.sn.Mounts(ctx, info.Parent)
	if err != nil {
		return d, err
	}
	if len(pm) == 1 && pm[0].Type == "bind" {
		d.Parent = pm[0].Source
		return d, nil
	}
	return d, errdefs.System(fmt.Errorf("container %s: cannot find the image's tree", id))
}

// volumeStore gives the container service its volumes from the volume service.
type volumeStore struct{ *volume.Service }

func (v volumeStore) HasDevice(ctx context.Context, name string) bool {
	vol, err := v.Service.Inspect(ctx, name)
	return err != nil || vol.Options["type"] != "" || vol.Options["device"] != ""
}

func (v volumeStore) Acquire(ctx context.Context, r container.VolumeRequest) (string, bool, error) {
	return v.Service.Acquire(ctx, volume.AcquireOptions{Name: r.Name, Ref: r.Ref, Driver: r.Driver, Labels: r.Labels, Options: r.Options, Anonymous: r.Anonymous})
}

// volumeBackend serves the API's volume routes from the volume service.
type volumeBackend struct{ *volume.Service }

func (v volumeBackend) Create(ctx context.Context, o dvolume.CreateOptions) (dvolume.Volume, error) {
	return v.Service.Create(ctx, volume.CreateOptions{Name: o.Name, Driver: o.Driver, Options: o.DriverOpts, Labels: o.Labels})
}
