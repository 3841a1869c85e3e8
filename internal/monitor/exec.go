package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logs"
)

// ExecOptions starts a process in a running container ("exec" on the control socket).
type ExecOptions struct {
	// ID is the container's.
	ID string `json:"id"`
	// ExecID names the process; unique within the container while the container runs.
	ExecID string `json:"execId"`
	// Process is what to run: args, env, cwd, user, capabilities, terminal, ... as in config.json.
	Process *specs.Process `json:"process"`
	// Tty gives the process a terminal from the container's /dev/pts; its output is one raw stream.
	Tty bool `json:"tty,omitempty"`
	// OpenStdin feeds the attached client's input to the process; its half-close ends the input.
	OpenStdin bool `json:"openStdin,omitempty"`
	// Attach turns the control connection into the process's attach stream, connected before the process
	// starts; nil runs it detached, output discarded.
	Attach *AttachOptions `json:"attach,omitempty"`
	// Height and Width are the terminal's initial size (0: the kernel's default).
	Height uint16 `json:"height,omitempty"`
	Width  uint16 `json:"width,omitempty"`
}

// ExecState is what the monitor knows about one exec'd process.
type ExecState struct {
	ID       string `json:"id"`
	ExecID   string `json:"execId"`
	Pid      int    `json:"pid"`
	Running  bool   `json:"running"`
	ExitCode int    `json:"exitCode"`
	Signal   int    `json:"signal,omitempty"`
}

// ExecLaunch is what an Execer gets: the container (its bundle, runtime and init's pid) and the process.
type ExecLaunch struct {
	ID, Bundle, Runtime string
	// Pid is the container's init, in the monitor's pid namespace.
	Pid     int
	Process *specs.Process
	Stdio   Stdio
}

// Execer starts processes inside running containers. Like Launcher, it returns once the process runs its
// program, or with the error that stopped it, whose text reaches the user unchanged. The process must be
// the monitor's child (Wait reaps it) and in a session of its own.
type Execer interface {
	Exec(ctx context.Context, o ExecLaunch) (Proc, error)
}

// maxExecsPerContainer bounds the finished execs a long-running container keeps for inspection.
const maxExecsPerContainer = 1024

// execProc is one exec'd process of a container.
type execProc struct {
	id      string
	io      *pipes // nil when detached without a terminal
	att     *attacher
	pid     int
	running bool
	exit    ExitStatus
	ended   chan struct{}
}

func (c *container) execState(e *execProc) ExecState {
	return ExecState{ID: c.opts.ID, ExecID: e.id, Pid: e.pid, Running: e.running, ExitCode: e.exit.Code, Signal: e.exit.Signal}
}

// startExec launches an exec. With conn set, output is queued on an attacher for conn from before the
// process starts; the caller writes the answer and then starts the attacher's writer.
func (s *Server) startExec(ctx context.Context, o ExecOptions, conn *net.UnixConn) (*container, *execProc, error) {
	if !validID(o.ExecID) {
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid exec id %q", o.ExecID))
	}
	if o.Process == nil || len(o.Process.Args) == 0 {
		return nil, nil, errdefs.InvalidParameter(errors.New("exec: no command given"))
	}
	c, err := s.get(o.ID)
	if err != nil {
		return nil, nil, err
	}
	e := &execProc{id: o.ExecID, ended: make(chan struct{})}
	c.mu.Lock()
	if !c.live || c.deleted {
		c.mu.Unlock()
		return nil, nil, errdefs.Conflict(fmt.Errorf("container %s is not running", o.ID))
	}
	if _, ok := c.execs[o.ExecID]; ok {
		c.mu.Unlock()
		return nil, nil, errdefs.Conflict(fmt.Errorf("exec %s already exists", o.ExecID))
	}
	if len(c.execs) >= maxExecsPerContainer {
		for id, old := range c.execs {
			if !old.running {
				delete(c.execs, id)
			}
		}
	}
	c.execs[o.ExecID] = e
	pid, bundle, runtime := c.pid, c.opts.Bundle, c.opts.Runtime
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.execs, o.ExecID)
		c.mu.Unlock()
	}

	p, err := execPipes(o, pid)
	if err != nil {
		forget()
		return nil, nil, err
	}
	if conn != nil {
		e.att = &attacher{conn: conn, stdout: o.Attach.Stdout, stderr: o.Attach.Stderr, raw: o.Tty, wake: make(chan struct{}, 1)}
	}
	e.io = p
	var stdio Stdio
	drained := make(chan struct{})
	var wg sync.WaitGroup
	if p != nil {
		stdio = Stdio{Stdin: p.stdinR, Stdout: p.stdoutW, Stderr: p.stderrW}
		for _, o := range []struct {
			r      *os.File
			stream byte
		}{{p.stdoutR, logs.StreamStdout}, {p.stderrR, logs.StreamStderr}} {
			if o.r != nil {
				wg.Add(1)
				go e.pump(o.r, o.stream, &wg)
			}
		}
	}
	go func() {
		wg.Wait()
		close(drained)
	}()

	proc, err := s.launchExec(ctx, ExecLaunch{ID: o.ID, Bundle: bundle, Runtime: runtime, Pid: pid, Process: o.Process, Stdio: stdio})
	if p != nil {
		p.closeChildEnds()
	}
	if err != nil {
		if p != nil {
			p.closeAll()
		}
		<-drained
		forget()
		return nil, nil, err
	}
	c.mu.Lock()
	e.pid, e.running = proc.Pid(), true
	c.mu.Unlock()
	go s.waitExec(c, e, proc, drained)
	return c, e, nil
}

// execPipes makes an exec's stdio: a terminal from the container's devpts, pipes for the streams an
// attached client wants, or nothing (the process gets /dev/null).
func execPipes(o ExecOptions, pid int) (*pipes, error) {
	if o.Tty {
		master, replica, err := newPtyInRoot(pid)
		if err != nil {
			return nil, err
		}
		if o.Height > 0 && o.Width > 0 {
			_ = resizePty(master, o.Height, o.Width)
		}
		return ttyPipes(master, replica), nil
	}
	if o.Attach == nil {
		return nil, nil
	}
	p, err := newPipes(o.OpenStdin && o.Attach.Stdin)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Server) launchExec(ctx context.Context, o ExecLaunch) (Proc, error) {
	// Held shared so the orphan reaper cannot take the process: it becomes our child while Exec runs.
	s.launchMu.RLock()
	defer s.launchMu.RUnlock()
	proc, err := s.execer.Exec(ctx, o)
	if err == nil {
		s.exempt.Store(proc.Pid(), struct{}{})
	}
	return proc, err
}

// pump copies one of an exec's output streams to its attached client, if any.
func (e *execProc) pump(r *os.File, stream byte, wg *sync.WaitGroup) {
	defer wg.Done()
	defer r.Close()
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	for {
		n, err := r.Read(*bp)
		if n > 0 && e.att != nil {
			e.att.send(stream, (*bp)[:n])
		}
		if err != nil {
			return
		}
	}
}

// waitExec reaps an exec'd process, lets its output drain and then ends its attach stream, so a client
// that sees the stream end finds the exit code already recorded.
func (s *Server) waitExec(c *container, e *execProc, proc Proc, drained chan struct{}) {
	st, err := proc.Wait()
	if err != nil {
		s.log.Error("waiting for exec", "id", c.opts.ID, "exec", e.id, "err", err)
	}
	s.exempt.Delete(proc.Pid())
	if e.io != nil {
		c.endRun(e.io, nil, drained)
	}
	c.mu.Lock()
	e.running, e.exit = false, st
	c.mu.Unlock()
	close(e.ended)
	if e.att != nil {
		e.att.finish()
	}
}

// serveExec runs an attached exec on its control connection: the answer line (with the pid), then the
// process's output, with what the client sends going to its stdin, until the output ends.
func (s *Server) serveExec(conn *net.UnixConn, br *bufio.Reader, o ExecOptions) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	c, e, err := s.startExec(ctx, o, conn)
	cancel()
	if err != nil {
		writeLine(conn, errorResponse(err))
		conn.Close()
		return
	}
	c.mu.Lock()
	st := c.execState(e)
	c.mu.Unlock()
	answer, _ := json.Marshal(response{Exec: &st})
	a := e.att
	a.mu.Lock()
	a.buf = append(append(answer, '\n'), a.buf...)
	a.mu.Unlock()
	go a.writeLoop(func() {})
	a.signal()

	var stdin io.Writer
	if o.OpenStdin && o.Attach.Stdin && e.io != nil {
		stdin = e.io.stdinW
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	for {
		n, err := br.Read(*bp)
		if n > 0 && stdin != nil {
			if _, werr := stdin.Write((*bp)[:n]); werr != nil {
				stdin = nil
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			// The client has no more input; it still wants the output.
			if stdin != nil {
				e.io.closeStdin()
			}
			return
		}
		a.kill()
		return
	}
}

// exec runs a detached exec.
func (s *Server) exec(o ExecOptions) (ExecState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	o.Attach = nil
	c, e, err := s.startExec(ctx, o, nil)
	if err != nil {
		return ExecState{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.execState(e), nil
}

func (s *Server) execStateOf(id, execID string) (ExecState, error) {
	c, err := s.get(id)
	if err != nil {
		return ExecState{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.execs[execID]
	if !ok {
		return ExecState{}, errdefs.NotFound(fmt.Errorf("No such exec instance: %s", execID))
	}
	return c.execState(e), nil
}

// resize sets the terminal size of a container (execID "") or of one of its execs. Without a terminal
// there is nothing to size, which is not an error.
func (s *Server) resize(id, execID string, height, width uint16) error {
	c, err := s.get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	var p *pipes
	if execID == "" {
		if !c.live && !c.starting {
			c.mu.Unlock()
			return errdefs.Conflict(fmt.Errorf("Container %s is not running", id))
		}
		p = c.io
	} else {
		e, ok := c.execs[execID]
		if !ok {
			c.mu.Unlock()
			return errdefs.NotFound(fmt.Errorf("No such exec instance: %s", execID))
		}
		if !e.running {
			c.mu.Unlock()
			return errdefs.Conflict(fmt.Errorf("exec %s is not running", execID))
		}
		p = e.io
	}
	c.mu.Unlock()
	if p == nil || !p.tty || height == 0 || width == 0 {
		return nil
	}
	return resizePty(p.stdoutR, height, width)
}
