package daemon

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/ctxsync"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/snapshot"
	dcontainer "github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/docker/pkg/stringid"
	digest "github.com/opencontainers/go-digest"
)

// buildImages gives the builder the image store and read-only views of images.
type buildImages struct {
	s   *image.Service
	sn  snapshot.Snapshotter
	tmp string // where views are mounted
}

func (b buildImages) Get(ctx context.Context, ref string) (build.Image, error) {
	img, err := b.s.Get(ctx, ref)
	if err != nil {
		return build.Image{}, err
	}
	return build.Image{ID: img.ID.String(), Config: img.Config, Created: img.Created}, nil
}

func (b buildImages) WriteChild(ctx context.Context, c build.Child) (string, error) {
	id, err := b.s.WriteChild(ctx, image.ChildOptions{Parent: digest.Digest(c.Parent), Layer: c.Layer, Config: c.Config, CreatedBy: c.CreatedBy, Created: c.Created})
	return id.String(), err
}

func (b buildImages) Tag(ctx context.Context, id, ref string) error { return b.s.Tag(ctx, id, ref) }

// Mount shows the image's top layer snapshot read-only. A committed snapshot's own mounts are
// read-only already, so no snapshot is made for the view: that took three metadata transactions (and
// their fsyncs) for every COPY, cached or not. An image without layers gets a throwaway empty snapshot
// whose key starts with the prefix the image service collects at startup, so a crash mid-build leaves
// nothing behind for good.
func (b buildImages) Mount(ctx context.Context, id string) (string, func(), error) {
	img, err := b.s.Get(ctx, id)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(b.tmp, "view-")
	if err != nil {
		return "", nil, errdefs.System(err)
	}
	if img.ChainID != "" {
		mounts, err := b.sn.Mounts(ctx, img.ChainID)
		if err != nil {
			os.Remove(dir)
			return "", nil, err
		}
		release := func() {
			snapshot.Unmount(dir)
			os.Remove(dir)
		}
		if err := snapshot.MountAll(mounts, dir); err != nil {
			release()
			return "", nil, errdefs.System(err)
		}
		return dir, release, nil
	}
	key := "extract-build-" + stringid.GenerateRandomID()[:16]
	mounts, err := b.sn.Prepare(ctx, key, img.ChainID)
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	release := func() {
		snapshot.Unmount(dir)
		os.Remove(dir)
		b.sn.Remove(context.WithoutCancel(ctx), key)
	}
	if err := snapshot.MountAll(mounts, dir); err != nil {
		release()
		return "", nil, errdefs.System(err)
	}
	return dir, release, nil
}

// buildRunner runs RUN steps as ordinary containers of the container service.
type buildRunner struct{ c *container.Service }

func (r buildRunner) Run(ctx context.Context, req build.RunRequest, commit func(io.Reader) error) (int, error) {
	cfg := &dcontainer.Config{
		Image: req.Image, Cmd: req.Cmd, Entrypoint: []string{""}, Env: req.Env, User: req.User, WorkingDir: req.WorkingDir,
		Healthcheck: &dcontainer.HealthConfig{Test: []string{"NONE"}},
		Labels:      map[string]string{"berth.build": "true"},
	}
	lim := req.Resources
	hc := &dcontainer.HostConfig{NetworkMode: dcontainer.NetworkMode(req.NetworkMode), ExtraHosts: req.ExtraHosts,
		ShmSize: lim.ShmSize, Resources: dcontainer.Resources{
			Memory: lim.Memory, MemorySwap: lim.MemorySwap, CPUShares: lim.CPUShares, CPUPeriod: lim.CPUPeriod,
			CPUQuota: lim.CPUQuota, CpusetCpus: lim.CpusetCpus,
		}}
	for _, u := range lim.Ulimits {
		hc.Ulimits = append(hc.Ulimits, &dcontainer.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	created, err := r.c.Create(ctx, "", cfg, hc, &network.NetworkingConfig{})
	if err != nil {
		return 0, err
	}
	id := created.ID
	// Intermediate containers never outlive their step, whatever happens to it.
	defer r.c.Remove(context.WithoutCancel(ctx), id, true, true)
	waitC, err := r.c.Wait(ctx, id, dcontainer.WaitConditionNextExit)
	if err != nil {
		return 0, err
	}
	if err := r.c.Start(ctx, id); err != nil {
		return 0, err
	}
	if req.Started != nil {
		req.Started(id)
	}
	out := req.Output
	if out == nil {
		out = io.Discard
	}
	// The output is done only when the demultiplexer has written its last bytes, not when Logs returns.
	logsDone := make(chan struct{})
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(r.c.Logs(ctx, id, dcontainer.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true}, pw))
	}()
	go func() {
		defer close(logsDone)
		_, err := stdcopy.StdCopy(out, out, pr)
		pr.CloseWithError(err)
	}()
	var res dcontainer.WaitResponse
	select {
	case res = <-waitC:
	case <-ctx.Done():
		<-logsDone // Logs ends with ctx; nothing may write to the output after Run returns
		return 0, ctx.Err()
	}
	<-logsDone
	if res.Error != nil && res.Error.Message != "" {
		return 0, errdefs.System(errorString(res.Error.Message))
	}
	code := int(res.StatusCode)
	if code != 0 {
		return code, nil
	}
	// The layer is read from the container's directory, so the container goes only after the reader ends.
	lr, lw := io.Pipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		lw.CloseWithError(r.c.WriteLayer(ctx, id, lw))
	}()
	err = commit(lr)
	lr.Close()
	<-written
	return 0, err
}

type errorString string

func (e errorString) Error() string { return string(e) }

func buildRoot(dataRoot string) string { return filepath.Join(dataRoot, "builder") }

// buildBackend serves POST /build from the build service.
type buildBackend struct{ s *build.Service }

func (b buildBackend) Build(ctx context.Context, src io.Reader, o api.BuildOptions, out io.Writer) (string, error) {
	res, err := b.s.Build(ctx, src, build.Options{
		Tags: o.Tags, Dockerfile: o.Dockerfile, BuildArgs: o.BuildArgs, NoCache: o.NoCache, Target: o.Target,
		Labels: o.Labels, CacheFrom: o.CacheFrom, NetworkMode: o.NetworkMode, SuppressOutput: o.Quiet, Remote: o.Remote, ExtraHosts: o.ExtraHosts,
		Resources: build.Resources{ShmSize: o.ShmSize, Ulimits: buildUlimits(o.Ulimits), Memory: o.Memory, MemorySwap: o.MemorySwap, CPUShares: o.CPUShares, CPUPeriod: o.CPUPeriod,
			CPUQuota: o.CPUQuota, CpusetCpus: o.CpusetCpus},
		PullParent: o.PullParent, Auths: o.Auths, SyncSession: o.SyncSession,
	}, out)
	return res.ID, err
}

// SyncContext serves Berth's build context sync (api.ContextSyncBackend).
func (b buildBackend) SyncContext(ctx context.Context, id string, m ctxsync.Manifest) (ctxsync.Answer, error) {
	return b.s.SyncContext(ctx, id, m)
}

// RemoveUnused deletes a build step's image when nothing needs it (build.ImageRemover).
func (b buildImages) RemoveUnused(ctx context.Context, id string) (bool, int64) {
	img, err := b.s.Get(ctx, id)
	if err != nil || len(img.RepoTags) > 0 {
		return false, 0
	}
	size := b.LayerSize(ctx, id)
	if _, err := b.s.Remove(ctx, id, false, true); err != nil {
		return false, 0
	}
	return true, max(size, 0)
}

// buildUlimits converts the API's --ulimit values for the build service.
func buildUlimits(in []*dcontainer.Ulimit) []build.Ulimit {
	var out []build.Ulimit
	for _, u := range in {
		if u != nil {
			out = append(out, build.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
		}
	}
	return out
}

// LayerSize is the bytes of a step image's own layer (build.ImageRemover).
func (b buildImages) LayerSize(ctx context.Context, id string) int64 {
	img, err := b.s.Get(ctx, id)
	if err != nil {
		return 0
	}
	size := img.Size
	if img.Parent != "" {
		if p, err := b.s.Get(ctx, img.Parent.String()); err == nil {
			size -= p.Size
		}
	}
	return max(size, 0)
}

func (b buildBackend) PruneCache(ctx context.Context, o api.BuildPruneOptions) (api.BuildPruneReport, error) {
	rep, err := b.s.Prune(ctx, build.PruneOptions{All: o.All, KeepStorage: o.KeepStorage, Filters: o.Filters})
	return api.BuildPruneReport{CachesDeleted: rep.CachesDeleted, SpaceReclaimed: rep.SpaceReclaimed}, err
}

func (b buildImages) OpenLayer(ctx context.Context, diffID string) (io.ReadCloser, error) {
	d, err := digest.Parse(diffID)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	return b.s.OpenLayer(d)
}
