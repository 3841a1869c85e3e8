package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/backend"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/spec"
)

// ExecRequest asks the monitor to run a process in a running container.
type ExecRequest struct {
	ID, ExecID     string
	Process        *specs.Process
	Tty, OpenStdin bool
	// Attach connects the caller to the process's streams before it starts; false runs it detached.
	Attach                bool
	Stdin, Stdout, Stderr bool
	Height, Width         uint
}

// ExecProcState is the monitor's view of one exec'd process.
type ExecProcState struct {
	Pid      int
	Running  bool
	ExitCode int
}

// ExecMonitor is what exec and TTY sizing need of the monitor on top of Monitor. The daemon's monitor
// adapter implements both; the services find it by asserting Config.Monitor.
type ExecMonitor interface {
	// Exec starts the process. With req.Attach the connection carries its output (stdcopy frames, or raw
	// with a TTY) and takes its input; CloseWrite ends its stdin. The monitor closes it after the process
	// exited and its output was sent, with the exit already recorded.
	Exec(ctx context.Context, req ExecRequest) (ExecProcState, *net.UnixConn, error)
	ExecState(ctx context.Context, id, execID string) (ExecProcState, error)
	// Resize sets the terminal size of a container (execID "") or of one of its execs.
	Resize(ctx context.Context, id, execID string, height, width uint) error
}

// maxFinishedExecs bounds the exec records kept for inspection after their process ended.
const maxFinishedExecs = 1024

// ExecService implements Docker's exec API on top of the container service: create an exec, start it
// (attached, as a hijacked stream, or detached), inspect and resize it. Exec records live in memory,
// as in Docker.
type ExecService struct {
	s *Service

	mu    sync.Mutex
	execs map[string]*execRec
}

// NewExecService returns the exec service of s. s's Monitor must also implement ExecMonitor.
func NewExecService(s *Service) *ExecService {
	return &ExecService{s: s, execs: map[string]*execRec{}}
}

type execRec struct {
	id, containerID string
	cfg             container.ExecOptions
	created         time.Time

	mu       sync.Mutex
	started  bool
	running  bool
	pid      int
	exitCode *int
}

func (x *ExecService) monitor() (ExecMonitor, error) {
	m, ok := x.s.cfg.Monitor.(ExecMonitor)
	if !ok {
		return nil, errdefs.NotImplemented(errors.New("this monitor cannot exec"))
	}
	return m, nil
}

// activeContainer finds a container that can take an exec, with Docker's errors when it cannot.
func (x *ExecService) activeContainer(ref string) (*ctr, error) {
	c, err := x.s.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.rec.State.Status == "restarting":
		return nil, errdefs.Conflict(fmt.Errorf("container %s is restarting, wait until the container is running", c.rec.ID))
	case !c.running():
		return nil, errdefs.Conflict(fmt.Errorf("container %s is not running", c.rec.ID))
	case c.rec.State.Paused:
		return nil, errdefs.Conflict(fmt.Errorf("container %s is paused, unpause the container before exec", c.rec.ID))
	}
	return c, nil
}

// Create registers an exec in a running container and returns its ID.
func (x *ExecService) Create(ctx context.Context, ref string, cfg container.ExecOptions) (string, error) {
	if len(cfg.Cmd) == 0 || (len(cfg.Cmd) == 1 && cfg.Cmd[0] == "") {
		return "", errdefs.InvalidParameter(errors.New("No exec command specified"))
	}
	c, err := x.activeContainer(ref)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	cid, name := c.rec.ID, c.rec.Name
	c.mu.Unlock()
	e := &execRec{id: newExecID(), containerID: cid, cfg: cfg, created: time.Now()}
	x.mu.Lock()
	x.pruneLocked()
	x.execs[e.id] = e
	x.mu.Unlock()
	x.s.event("exec_create: "+strings.Join(cfg.Cmd, " "), cid, map[string]string{"name": name, "execID": e.id})
	return e.id, nil
}

func newExecID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// pruneLocked forgets the oldest finished execs beyond maxFinishedExecs.
func (x *ExecService) pruneLocked() {
	if len(x.execs) < maxFinishedExecs {
		return
	}
	var done []*execRec
	for _, e := range x.execs {
		e.mu.Lock()
		if e.started && !e.running {
			done = append(done, e)
		}
		e.mu.Unlock()
	}
	slices.SortFunc(done, func(a, b *execRec) int { return a.created.Compare(b.created) })
	for _, e := range done[:max(0, len(x.execs)-maxFinishedExecs+1)] {
		delete(x.execs, e.id)
	}
}

func (x *ExecService) get(id string) (*execRec, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e, ok := x.execs[id]; ok {
		return e, nil
	}
	return nil, errdefs.NotFound(fmt.Errorf("No such exec instance: %s", id))
}

// ExecStartOptions are POST /exec/{id}/start's body.
type ExecStartOptions struct {
	Detach bool
	// ConsoleSize is the terminal's initial [height, width]; nil leaves the create's.
	ConsoleSize *[2]uint
}

// Start runs an exec. Detached, it returns once the process runs (nil stream). Otherwise it returns the
// function that runs the process and streams it over the hijacked connection: what fails from then on
// is written into the stream, as Docker does, and the exit code goes into the record.
func (x *ExecService) Start(ctx context.Context, id string, opts ExecStartOptions) (func(conn net.Conn) error, error) {
	e, err := x.get(id)
	if err != nil {
		return nil, err
	}
	mon, err := x.monitor()
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		if e.running {
			return nil, errdefs.Conflict(fmt.Errorf("Error: Exec command %s is already running", id))
		}
		return nil, errdefs.Conflict(fmt.Errorf("Error: Exec command %s has already run", id))
	}
	e.started = true
	e.mu.Unlock()
	c, err := x.activeContainer(e.containerID)
	if err != nil {
		return nil, err
	}
	req, err := x.request(c, e, opts)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	name := c.rec.Name
	c.mu.Unlock()
	x.s.event("exec_start: "+strings.Join(e.cfg.Cmd, " "), e.containerID, map[string]string{"name": name, "execID": e.id})
	if opts.Detach {
		st, _, err := mon.Exec(ctx, req)
		if err != nil {
			x.failed(e, err)
			return nil, execError(err)
		}
		x.startedAs(e, st)
		return nil, nil
	}
	return func(conn net.Conn) error { return x.stream(ctx, mon, e, req, conn) }, nil
}

// request builds the exec's process from the container's (env, user, caps, rlimits) and the exec's
// options.
func (x *ExecService) request(c *ctr, e *execRec, opts ExecStartOptions) (ExecRequest, error) {
	c.mu.Lock()
	id := c.rec.ID
	c.mu.Unlock()
	cfg := e.cfg
	p, err := x.s.execProcess(c, cfg)
	if err != nil {
		return ExecRequest{}, err
	}
	req := ExecRequest{
		ID: id, ExecID: e.id, Process: p, Tty: cfg.Tty, OpenStdin: cfg.AttachStdin,
		Attach: !opts.Detach, Stdin: cfg.AttachStdin, Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr,
	}
	size := cfg.ConsoleSize
	if opts.ConsoleSize != nil {
		size = opts.ConsoleSize
	}
	if size != nil {
		req.Height, req.Width = size[0], size[1]
	}
	return req, nil
}

// execProcess builds a process to run in c from the container's own (env, user, caps, rlimits) and an
// exec's options.
func (s *Service) execProcess(c *ctr, cfg container.ExecOptions) (*specs.Process, error) {
	c.mu.Lock()
	id := c.rec.ID
	groupAdd := c.rec.HostConfig.GroupAdd
	c.mu.Unlock()
	base, err := spec.ReadBundle(s.bundleDir(id))
	if err != nil || base.Process == nil {
		return nil, errdefs.System(fmt.Errorf("reading the container's process: %v", err))
	}
	p := *base.Process
	p.Args = cfg.Cmd
	p.Terminal = cfg.Tty
	p.ConsoleSize = nil
	p.Env = mergeEnv(base.Process.Env, cfg.Env)
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	if cfg.User != "" {
		uid, gid, groups, home, err := spec.ResolveUser(s.rootfsDir(id), cfg.User, groupAdd)
		if err != nil {
			return nil, errdefs.InvalidParameter(err)
		}
		p.User = specs.User{UID: uid, GID: gid, AdditionalGids: groups}
		if !hasEnv(cfg.Env, "HOME") && home != "" {
			p.Env = mergeEnv(p.Env, []string{"HOME=" + home})
		}
	}
	if cfg.Tty && !hasEnv(p.Env, "TERM") {
		p.Env = append(p.Env, "TERM=xterm")
	}
	if cfg.Privileged {
		all, err := spec.HostCapabilities()
		if err != nil {
			return nil, errdefs.System(err)
		}
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return &p, nil
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return true
		}
	}
	return false
}

// stream runs an attached exec over conn.
func (x *ExecService) stream(ctx context.Context, mon ExecMonitor, e *execRec, req ExecRequest, conn net.Conn) error {
	st, mc, err := mon.Exec(ctx, req)
	if err != nil {
		x.failed(e, err)
		// Docker writes a start failure into the stream, where the CLI shows it; the exit code (126/127)
		// is in the exec's inspect.
		var w io.Writer = conn
		if !req.Tty {
			w = stdcopy.NewStdWriter(conn, stdcopy.Stdout)
		}
		_, _ = io.WriteString(w, execError(err).Error()+"\r\n")
		return nil
	}
	x.startedAs(e, st)
	defer mc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// Input until the client half-closes (the process gets EOF) or types the detach keys (the session
		// ends, the process keeps running); any other error means the client is gone.
		var err error
		if req.Stdin {
			err = copyInput(mc, conn, req.Tty, e.cfg.DetachKeys)
			if err == nil {
				_ = mc.CloseWrite()
			}
		} else {
			_, err = io.Copy(io.Discard, conn)
		}
		if err != nil {
			cancel()
		}
	}()
	go func() {
		<-ctx.Done()
		_ = mc.Close()
	}()
	_, err = io.Copy(conn, mc)
	x.refresh(context.WithoutCancel(ctx), mon, e)
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

func (x *ExecService) startedAs(e *execRec, st ExecProcState) {
	e.mu.Lock()
	e.pid, e.running = st.Pid, st.Running
	if !st.Running {
		code := st.ExitCode
		e.exitCode = &code
	}
	e.mu.Unlock()
}

func (x *ExecService) failed(e *execRec, err error) {
	code := exitCodeForStartError(err)
	if errdefs.IsConflict(err) || errdefs.IsNotFound(err) {
		code = 126
	}
	e.mu.Lock()
	e.running, e.exitCode = false, &code
	e.mu.Unlock()
}

// execError words a start failure as Docker does; the docker CLI shows it as is.
func execError(err error) error {
	if errdefs.IsConflict(err) || errdefs.IsNotFound(err) {
		return err
	}
	e := fmt.Errorf("OCI runtime exec failed: exec failed: unable to start container process: %s: unknown", err.Error())
	if errdefs.IsInvalidParameter(err) {
		return errdefs.InvalidParameter(e)
	}
	return errdefs.System(e)
}

// refresh asks the monitor how a running exec is doing and records its exit.
func (x *ExecService) refresh(ctx context.Context, mon ExecMonitor, e *execRec) {
	e.mu.Lock()
	running := e.running
	e.mu.Unlock()
	if !running {
		return
	}
	st, err := mon.ExecState(ctx, e.containerID, e.id)
	if err != nil {
		// The monitor no longer knows it: the container's run ended and took the process with it.
		if errdefs.IsNotFound(err) {
			code := 137
			e.mu.Lock()
			e.running, e.exitCode = false, &code
			e.mu.Unlock()
		}
		return
	}
	if st.Running {
		return
	}
	e.mu.Lock()
	wasRunning := e.running
	e.running = false
	code := st.ExitCode
	e.exitCode = &code
	e.mu.Unlock()
	if wasRunning {
		x.s.event("exec_die", e.containerID, map[string]string{"execID": e.id, "exitCode": fmt.Sprint(code)})
	}
}

// Inspect describes an exec, in the shape of Docker's GET /exec/{id}/json.
func (x *ExecService) Inspect(ctx context.Context, id string) (*backend.ExecInspect, error) {
	e, err := x.get(id)
	if err != nil {
		return nil, err
	}
	if mon, err := x.monitor(); err == nil {
		x.refresh(ctx, mon, e)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cfg := e.cfg
	pc := &backend.ExecProcessConfig{Tty: cfg.Tty, Entrypoint: cfg.Cmd[0], Arguments: cfg.Cmd[1:], User: cfg.User}
	if cfg.Privileged {
		priv := true
		pc.Privileged = &priv
	}
	var exit *int
	if e.exitCode != nil {
		code := *e.exitCode
		exit = &code
	}
	return &backend.ExecInspect{
		ID: e.id, Running: e.running, ExitCode: exit, ProcessConfig: pc,
		OpenStdin: cfg.AttachStdin, OpenStdout: cfg.AttachStdout, OpenStderr: cfg.AttachStderr,
		CanRemove: e.started && !e.running, ContainerID: e.containerID, DetachKeys: []byte(cfg.DetachKeys), Pid: e.pid,
	}, nil
}

// Resize sets the size of a running exec's terminal.
func (x *ExecService) Resize(ctx context.Context, id string, height, width uint) error {
	e, err := x.get(id)
	if err != nil {
		return err
	}
	mon, err := x.monitor()
	if err != nil {
		return err
	}
	e.mu.Lock()
	running := e.running
	e.mu.Unlock()
	if !running {
		return errdefs.Conflict(fmt.Errorf("exec %s is not running", id))
	}
	return mon.Resize(ctx, e.containerID, e.id, height, width)
}
