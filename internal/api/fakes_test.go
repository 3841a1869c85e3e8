package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/opencontainers/go-digest"
)

// fakeImages is an in-memory ImageBackend that records what the HTTP layer handed it.
type fakeImages struct {
	mu         sync.Mutex
	known      map[string]bool // refs that Inspect, History, Tag and Save find
	importOpts ImportOptions
	imported   []byte
	importRead func(src io.Reader) ([]byte, error) // replaces io.ReadAll, to observe streaming
	listAll    bool
	listF      filters.Args
	tags       [][2]string
	removed    []string
	removeOpts [2]bool
	saved      []string
	pruneF     filters.Args
}

func newFakeImages(refs ...string) *fakeImages {
	f := &fakeImages{known: map[string]bool{}}
	for _, r := range refs {
		f.known[r] = true
	}
	return f
}

func noSuchImage(ref string) error { return errdefs.NotFound(fmt.Errorf("No such image: %s", ref)) }

func (f *fakeImages) Import(ctx context.Context, src io.Reader, opts ImportOptions) (digest.Digest, error) {
	read := f.importRead
	if read == nil {
		read = io.ReadAll
	}
	data, err := read(src)
	if err != nil {
		return "", err
	}
	if string(data) == "not a tar" {
		return "", errdefs.InvalidParameter(errors.New("archive/tar: invalid tar header"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.importOpts, f.imported = opts, data
	if opts.Ref != "" {
		f.known[opts.Ref] = true
	}
	return digest.FromBytes(data), nil
}

func (f *fakeImages) Load(ctx context.Context, src io.Reader, progress func(string)) error {
	data, err := io.ReadAll(src)
	if err != nil {
		return err
	}
	switch string(data) {
	case "garbage":
		return errdefs.InvalidParameter(errors.New("unrecognized archive format"))
	case "half":
		progress("Loaded image: first:latest")
		return errdefs.System(errors.New("disk full"))
	}
	progress("Loaded image: busybox:latest")
	return nil
}

func (f *fakeImages) Save(ctx context.Context, refs []string, w io.Writer) error {
	for _, r := range refs {
		if !f.has(r) {
			return noSuchImage(r)
		}
	}
	f.mu.Lock()
	f.saved = refs
	f.mu.Unlock()
	_, err := io.WriteString(w, "archive of "+strings.Join(refs, ","))
	return err
}

func (f *fakeImages) has(ref string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.known[ref]
}

func (f *fakeImages) Tag(ctx context.Context, source, target string) error {
	if !f.has(source) {
		return noSuchImage(source)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tags = append(f.tags, [2]string{source, target})
	f.known[target] = true
	return nil
}

func (f *fakeImages) Remove(ctx context.Context, ref string, force, noPrune bool) ([]dimage.DeleteResponse, error) {
	if !f.has(ref) {
		return nil, noSuchImage(ref)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, ref)
	f.removeOpts = [2]bool{force, noPrune}
	delete(f.known, ref)
	return []dimage.DeleteResponse{{Untagged: ref}}, nil
}

func (f *fakeImages) List(ctx context.Context, all bool, fl filters.Args) ([]dimage.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listAll, f.listF = all, fl
	var out []dimage.Summary
	for ref := range f.known {
		if fl.Contains("reference") && !matchAny(fl.Get("reference"), ref) {
			continue
		}
		out = append(out, dimage.Summary{ID: digest.FromString(ref).String(), RepoTags: []string{ref}, Size: 1234, Created: 1700000000})
	}
	return out, nil
}

func matchAny(patterns []string, ref string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, ref); ok {
			return true
		}
	}
	return false
}

func (f *fakeImages) History(ctx context.Context, ref string) ([]dimage.HistoryResponseItem, error) {
	if !f.has(ref) {
		return nil, noSuchImage(ref)
	}
	return []dimage.HistoryResponseItem{{ID: "sha256:top", CreatedBy: "/bin/sh -c #(nop) CMD [\"sh\"]"}, {ID: "<missing>", Size: 42}}, nil
}

func (f *fakeImages) Inspect(ctx context.Context, ref string) (*dimage.InspectResponse, error) {
	if !f.has(ref) {
		return nil, noSuchImage(ref)
	}
	return &dimage.InspectResponse{ID: digest.FromString(ref).String(), RepoTags: []string{ref}, Os: "linux"}, nil
}

func (f *fakeImages) Prune(ctx context.Context, fl filters.Args) (dimage.PruneReport, error) {
	f.mu.Lock()
	f.pruneF = fl
	f.mu.Unlock()
	return dimage.PruneReport{ImagesDeleted: []dimage.DeleteResponse{{Deleted: "sha256:dead"}}, SpaceReclaimed: 99}, nil
}

// fakeCtr is one container of fakeContainers.
type fakeCtr struct {
	id, name string
	tty      bool
	running  bool
}

// fakeContainers is an in-memory ContainerBackend. Wait and Logs block on channels the test controls.
type fakeContainers struct {
	mu       sync.Mutex
	ctrs     map[string]*fakeCtr
	created  *container.Config
	host     *container.HostConfig
	calls    []string // "stop c1 SIGINT 3", "kill c1 SIGHUP", ...
	listArgs string
	listF    filters.Args
	waitCond container.WaitCondition
	waitCh   chan container.WaitResponse
	logsOpts container.LogsOptions
	logsMore chan struct{} // closed by the test to let a following Logs write its second line
	attached chan AttachOptions
}

func newFakeContainers() *fakeContainers {
	return &fakeContainers{
		ctrs:     map[string]*fakeCtr{},
		waitCh:   make(chan container.WaitResponse, 1),
		logsMore: make(chan struct{}),
		attached: make(chan AttachOptions, 1),
	}
}

func (f *fakeContainers) add(id, name string, tty bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctrs[id] = &fakeCtr{id: id, name: name, tty: tty}
}

func (f *fakeContainers) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeContainers) get(id string) (*fakeCtr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.ctrs {
		if c.id == id || c.name == id {
			return c, nil
		}
	}
	return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", id))
}

func (f *fakeContainers) Create(ctx context.Context, name string, cfg *container.Config, host *container.HostConfig, _ *network.NetworkingConfig) (container.CreateResponse, error) {
	if _, err := f.get(name); name != "" && err == nil {
		return container.CreateResponse{}, errdefs.Conflict(fmt.Errorf("Conflict. The container name %q is already in use", "/"+name))
	}
	id := fmt.Sprintf("c%d", len(f.ctrs)+1)
	f.add(id, name, cfg.Tty)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created, f.host = cfg, host
	return container.CreateResponse{ID: id}, nil
}

func (f *fakeContainers) Start(ctx context.Context, id string) error {
	c, err := f.get(id)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.running {
		return errdefs.NotModified(errors.New("container already started"))
	}
	c.running = true
	return nil
}

func (f *fakeContainers) Stop(ctx context.Context, id, signal string, timeout *int) error {
	if _, err := f.get(id); err != nil {
		return err
	}
	t := "nil"
	if timeout != nil {
		t = fmt.Sprint(*timeout)
	}
	f.record("stop %s %s %s", id, signal, t)
	return nil
}

func (f *fakeContainers) Kill(ctx context.Context, id, signal string) error {
	if _, err := f.get(id); err != nil {
		return err
	}
	f.record("kill %s %s", id, signal)
	return nil
}

func (f *fakeContainers) Remove(ctx context.Context, id string, force, removeVolumes bool) error {
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if c.running && !force {
		return errdefs.Conflict(fmt.Errorf("cannot remove container %q: container is running", id))
	}
	f.record("remove %s %v %v", id, force, removeVolumes)
	return nil
}

func (f *fakeContainers) Wait(ctx context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	if _, err := f.get(id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waitCond = cond
	return f.waitCh, nil
}

func (f *fakeContainers) List(ctx context.Context, all bool, limit int, size bool, fl filters.Args) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listArgs = fmt.Sprintf("all=%v limit=%d size=%v", all, limit, size)
	f.listF = fl
	var out []container.Summary
	for _, c := range f.ctrs {
		out = append(out, container.Summary{ID: c.id, Names: []string{"/" + c.name}, State: "created"})
	}
	return out, nil
}

func (f *fakeContainers) Inspect(ctx context.Context, id string) (*container.InspectResponse, error) {
	c, err := f.get(id)
	if err != nil {
		return nil, err
	}
	return &container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: c.id, Name: "/" + c.name, State: &container.State{Running: c.running}, HostConfig: &container.HostConfig{}},
		Config:            &container.Config{Tty: c.tty},
	}, nil
}

func (f *fakeContainers) Rename(ctx context.Context, id, newName string) error {
	c, err := f.get(id)
	if err != nil {
		return err
	}
	if newName == "boom" {
		return errors.New("database is locked") // no kind: an internal error
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c.name = newName
	return nil
}

func (f *fakeContainers) Logs(ctx context.Context, id string, opts container.LogsOptions, w io.Writer) error {
	f.mu.Lock()
	f.logsOpts = opts
	f.mu.Unlock()
	stdout, stderr := stdcopy.NewStdWriter(w, stdcopy.Stdout), stdcopy.NewStdWriter(w, stdcopy.Stderr)
	if _, err := io.WriteString(stdout, "line 1\n"); err != nil {
		return err
	}
	if _, err := io.WriteString(stderr, "oops 1\n"); err != nil {
		return err
	}
	if !opts.Follow {
		return nil
	}
	select {
	case <-f.logsMore:
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := io.WriteString(stdout, "line 2\n")
	if opts.Tail == "fail" {
		return errdefs.System(errors.New("log file vanished"))
	}
	return err
}

// Attach sends a greeting on stdout and stderr, then echoes stdin to stdout until the client half-closes,
// and says goodbye on its own half-close, as a container that reads stdin to the end would.
func (f *fakeContainers) Attach(ctx context.Context, id string, opts AttachOptions) (func(net.Conn) error, error) {
	c, err := f.get(id)
	if err != nil {
		return nil, err
	}
	return func(conn net.Conn) error { return f.stream(c, opts, conn) }, nil
}

func (f *fakeContainers) stream(c *fakeCtr, opts AttachOptions, conn net.Conn) error {
	f.attached <- opts
	if c.tty {
		_, err := io.WriteString(conn, "tty hello\r\n")
		return err
	}
	stdout, stderr := stdcopy.NewStdWriter(conn, stdcopy.Stdout), stdcopy.NewStdWriter(conn, stdcopy.Stderr)
	io.WriteString(stdout, "hello\n")
	io.WriteString(stderr, "warning\n")
	if opts.Stdin {
		if _, err := io.Copy(stdout, conn); err != nil {
			return err
		}
	}
	io.WriteString(stdout, "bye\n")
	if hc, ok := conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return errors.New("attach connection cannot half-close")
}

func (f *fakeContainers) Resize(ctx context.Context, id string, height, width uint) error {
	if _, err := f.get(id); err != nil {
		return err
	}
	f.record("resize %s %dx%d", id, height, width)
	return nil
}

// fakeSystem answers GET /info.
type fakeSystem struct{}

func (fakeSystem) Info(ctx context.Context) (*system.Info, error) {
	return &system.Info{ID: "berth-test", Name: "testhost", OperatingSystem: "Berth test", OSType: "linux", Driver: "overlayfs", ServerVersion: "0.0.1-test"}, nil
}

// condition returns the condition of the last Wait.
func (f *fakeContainers) condition() container.WaitCondition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waitCond
}
