package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ErrAlreadyRunning is returned by Serve when another monitor holds the exec root.
var ErrAlreadyRunning = errors.New("a monitor is already running for this exec root")

// startTimeout bounds one Launch. A start is not tied to the control connection: if berthd dies while a
// container starts, the start still completes and the daemon finds the container running.
const startTimeout = 2 * time.Minute

// Options configures a Server.
type Options struct {
	// ExecRoot holds monitor.sock, monitor.lock, containers/<id>/ and the OCI runtime's state (runc/).
	ExecRoot string
	// Builtin launches containers whose runtime is "" or "berth"; nil makes those starts fail.
	Builtin Launcher
	// Logger receives the monitor's own diagnostics; nil for slog.Default().
	Logger *slog.Logger
	// Execer starts exec'd processes; nil for Berth's own (linux.Exec), which serves containers of the
	// builtin runtime.
	Execer Execer
}

// Server is the monitor: it owns every registered container and serves the control socket.
type Server struct {
	execRoot string
	builtin  Launcher
	execer   Execer
	log      *slog.Logger

	mu         sync.Mutex
	containers map[string]*container
	subs       map[*subscriber]struct{}

	// launchMu is held shared while a Launcher may fork and reap its own helpers, and exclusively by the
	// orphan reaper, so the reaper never steals a child that someone is about to Wait for.
	launchMu sync.RWMutex
	// exempt holds the pids of children that a Proc's Wait reaps.
	exempt sync.Map
}

// NewServer returns a monitor for o.ExecRoot; Serve starts it.
func NewServer(o Options) (*Server, error) {
	if o.ExecRoot == "" {
		return nil, errors.New("monitor: exec root not set")
	}
	root, err := filepath.Abs(o.ExecRoot)
	if err != nil {
		return nil, err
	}
	l := o.Logger
	if l == nil {
		l = slog.Default()
	}
	ex := o.Execer
	if ex == nil {
		ex = BuiltinExecer{}
	}
	return &Server{
		execRoot:   root,
		builtin:    o.Builtin,
		execer:     ex,
		log:        l,
		containers: map[string]*container{},
		subs:       map[*subscriber]struct{}{},
	}, nil
}

// SocketPath is where the monitor for execRoot listens.
func SocketPath(execRoot string) string { return filepath.Join(execRoot, "monitor.sock") }

func containerDir(execRoot, id string) string { return filepath.Join(execRoot, "containers", id) }

// Serve makes the process a child subreaper, takes the exec root's lock and serves the control socket
// until ctx is done. Containers keep running when it returns. It returns ErrAlreadyRunning if another
// monitor holds the exec root.
func (s *Server) Serve(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(s.execRoot, "containers"), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(s.execRoot, "monitor.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return ErrAlreadyRunning
		}
		return err
	}
	// Orphans of containers (and a container whose runtime process died) become our children, so they
	// are reaped here instead of lingering as zombies under the host's init.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set child subreaper: %w", err)
	}
	sock := SocketPath(s.execRoot)
	os.Remove(sock) // stale: we hold the lock, so nobody serves it
	ln, err := listenUnix(sock)
	if err != nil {
		return err
	}
	defer os.Remove(sock)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.reapLoop(ctx)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	s.log.Info("monitor listening", "socket", sock, "pid", os.Getpid())
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return err
		}
		go s.handle(conn)
	}
	s.shutdown()
	return nil
}

// shutdown stops serving; it leaves containers and their processes alone.
func (s *Server) shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.containers {
		c.ln.Close()
	}
	for sub := range s.subs {
		delete(s.subs, sub)
		close(sub.ch)
		sub.conn.Close()
	}
}

func (s *Server) handle(conn *net.UnixConn) {
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(conn, 16*1024)
	line, err := br.ReadSlice('\n')
	if err != nil {
		if !errors.Is(err, bufio.ErrBufferFull) {
			conn.Close()
			return
		}
		writeLine(conn, errorResponse(errdefs.InvalidParameter(errors.New("request too long"))))
		conn.Close()
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		writeLine(conn, errorResponse(errdefs.InvalidParameter(fmt.Errorf("bad request: %w", err))))
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	if req.Op == opEvents {
		s.serveEvents(conn, br)
		return
	}
	if req.Op == opExec && req.Exec != nil && req.Exec.Attach != nil {
		s.serveExec(conn, br, *req.Exec)
		return
	}
	defer conn.Close()
	writeLine(conn, s.dispatch(req))
}

func writeLine(conn net.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = conn.Write(append(b, '\n'))
	conn.SetWriteDeadline(time.Time{})
	return err
}

func (s *Server) dispatch(req request) response {
	var (
		st  State
		err error
	)
	switch req.Op {
	case opPing:
		return response{}
	case opCreate:
		err = s.create(req.CreateOptions)
	case opStart:
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		st, err = s.start(ctx, req.ID)
		cancel()
	case opKill:
		err = s.kill(req.ID, req.Signal)
	case opState:
		var c *container
		if c, err = s.get(req.ID); err == nil {
			st = c.state()
		}
	case opList:
		return response{Containers: s.list()}
	case opDelete:
		err = s.delete(req.ID)
	case opExec, opExecState:
		var es ExecState
		if req.Op == opExec && req.Exec != nil {
			es, err = s.exec(*req.Exec)
		} else if req.Op == opExec {
			err = errdefs.InvalidParameter(errors.New("exec: no process given"))
		} else {
			es, err = s.execStateOf(req.ID, req.ExecID)
		}
		if err != nil {
			return errorResponse(err)
		}
		return response{Exec: &es}
	case opResize:
		err = s.resize(req.ID, req.ExecID, req.Height, req.Width)
	default:
		err = errdefs.InvalidParameter(fmt.Errorf("unknown operation %q", req.Op))
	}
	if err != nil {
		return errorResponse(err)
	}
	if st.ID == "" {
		return response{}
	}
	return response{State: &st}
}

func (s *Server) get(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", id))
	}
	return c, nil
}

func (s *Server) list() []State {
	s.mu.Lock()
	cs := make([]*container, 0, len(s.containers))
	for _, c := range s.containers {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	out := make([]State, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.state())
	}
	return out
}

func validID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\x00") && len(id) <= 128
}

func (s *Server) create(o CreateOptions) error {
	if !validID(o.ID) {
		return errdefs.InvalidParameter(fmt.Errorf("invalid container id %q", o.ID))
	}
	if o.Bundle == "" {
		return errdefs.InvalidParameter(errors.New("bundle not set"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.containers[o.ID]; ok {
		return errdefs.Conflict(fmt.Errorf("container %s already exists in the monitor", o.ID))
	}
	c, err := newContainer(s, o)
	if err != nil {
		return err
	}
	s.containers[o.ID] = c
	return nil
}

func (s *Server) delete(id string) error {
	c, err := s.get(id)
	if err != nil {
		return err
	}
	if err := c.remove(); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.containers, id)
	s.mu.Unlock()
	return nil
}

func (s *Server) kill(id string, sig int) error {
	if sig <= 0 || sig > 64 {
		return errdefs.InvalidParameter(fmt.Errorf("invalid signal %d", sig))
	}
	c, err := s.get(id)
	if err != nil {
		return err
	}
	return c.signal(unix.Signal(sig))
}

// builtinRuntime reports whether runtime names Berth's own runtime rather than an OCI runtime binary.
func builtinRuntime(runtime string) bool { return runtime == "" || runtime == "berth" }

func (s *Server) launcherFor(runtime string) (Launcher, error) {
	if builtinRuntime(runtime) {
		if s.builtin == nil {
			return nil, errors.New("the builtin runtime is not available in this monitor")
		}
		return s.builtin, nil
	}
	return RuncLauncher{Path: runtime, Root: filepath.Join(s.execRoot, "runc")}, nil
}
