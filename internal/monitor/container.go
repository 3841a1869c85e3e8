package monitor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logs"
)

// drainTimeout is how long after its init exits a container's output may still arrive (from processes
// that inherited the pipes) before the monitor stops reading and declares the run over.
const drainTimeout = 2 * time.Second

// copyBuffers are the 32 KiB buffers of the output copiers and stdin writers, only held while copying.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

type container struct {
	s    *Server
	opts CreateOptions
	dir  string
	ln   *net.UnixListener

	persistMu sync.Mutex // serialises writes of monitor.json

	mu        sync.Mutex
	status    string
	starting  bool
	live      bool // proc is set and not reaped yet: signals reach it
	pid       int
	proc      Proc
	exit      ExitStatus
	startedAt time.Time
	endedAt   time.Time
	io        *pipes // of the current run, or of the next one once someone attached or created it
	attachers map[*attacher]struct{}
	execs     map[string]*execProc // of the current run
	deleted   bool
}

// pipes are one run's stdio: the child's ends go to the Launcher, the monitor keeps the others. With a
// TTY there is one terminal: its replica is all three of the child's ends, and its master is both
// stdoutR (output) and stdinW (input); stderr does not exist apart.
type pipes struct {
	tty              bool
	stdinR, stdinW   *os.File // nil without OpenStdin (and no TTY)
	stdoutR, stdoutW *os.File
	stderrR, stderrW *os.File
	stdinOnce        sync.Once
}

func newPipes(openStdin bool) (p *pipes, err error) {
	p = &pipes{}
	defer func() {
		if err != nil {
			p.closeAll()
		}
	}()
	if openStdin {
		if p.stdinR, p.stdinW, err = os.Pipe(); err != nil {
			return nil, err
		}
	}
	if p.stdoutR, p.stdoutW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if p.stderrR, p.stderrW, err = os.Pipe(); err != nil {
		return nil, err
	}
	return p, nil
}

// ttyPipes wraps a terminal as a run's stdio.
func ttyPipes(master, replica *os.File) *pipes {
	return &pipes{tty: true, stdinR: replica, stdinW: master, stdoutR: master, stdoutW: replica, stderrW: replica}
}

// closeStdin gives the container EOF on stdin. A terminal cannot be half-closed: its input just stops.
func (p *pipes) closeStdin() {
	p.stdinOnce.Do(func() {
		if p.stdinW != nil && !p.tty {
			p.stdinW.Close()
		}
	})
}

func (p *pipes) closeChildEnds() {
	for _, f := range []*os.File{p.stdinR, p.stdoutW, p.stderrW} {
		if f != nil {
			f.Close() // with a TTY the same replica three times: later closes are no-ops
		}
	}
}

func (p *pipes) closeAll() {
	p.closeChildEnds()
	p.closeStdin()
	for _, f := range []*os.File{p.stdoutR, p.stderrR} {
		if f != nil {
			f.Close()
		}
	}
}

func newContainer(s *Server, o CreateOptions) (*container, error) {
	c := &container{
		s: s, opts: o, dir: containerDir(s.execRoot, o.ID),
		status: StatusCreated, attachers: map[*attacher]struct{}{}, execs: map[string]*execProc{},
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, err
	}
	if o.Tty {
		if err := mountPts(c.dir); err != nil {
			return nil, err
		}
	}
	sock := c.attachSocket()
	os.Remove(sock)
	ln, err := listenUnix(sock)
	if err != nil {
		return nil, err
	}
	c.ln = ln
	if _, err = c.pipesLocked(); err != nil {
		ln.Close()
		if o.Tty {
			_ = unmountPts(c.dir)
		}
		return nil, err
	}
	c.persist()
	go c.acceptAttach()
	return c, nil
}

func (c *container) attachSocket() string { return c.dir + "/attach.sock" }

func (c *container) state() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stateLocked()
}

func (c *container) stateLocked() State {
	return State{
		ID: c.opts.ID, Pid: c.pid, Status: c.status,
		ExitCode: c.exit.Code, Signal: c.exit.Signal, OOMKilled: c.exit.OOMKilled,
		StartedAt: c.startedAt, FinishedAt: c.endedAt,
	}
}

// pipesLocked returns the pipes of the current or next run, making them if the last run used its own up.
func (c *container) pipesLocked() (*pipes, error) {
	if c.io == nil {
		if c.opts.Tty {
			master, replica, err := newContainerPty(c.dir)
			if err != nil {
				return nil, err
			}
			if c.opts.Height > 0 && c.opts.Width > 0 {
				_ = resizePty(master, c.opts.Height, c.opts.Width)
			}
			c.io = ttyPipes(master, replica)
			return c.io, nil
		}
		p, err := newPipes(c.opts.OpenStdin)
		if err != nil {
			return nil, err
		}
		c.io = p
	}
	return c.io, nil
}

func (c *container) takeAttachersLocked() map[*attacher]struct{} {
	a := c.attachers
	c.attachers = map[*attacher]struct{}{}
	return a
}

func (s *Server) start(ctx context.Context, id string) (State, error) {
	c, err := s.get(id)
	if err != nil {
		return State{}, err
	}
	c.mu.Lock()
	if c.deleted {
		c.mu.Unlock()
		return State{}, errdefs.NotFound(fmt.Errorf("No such container: %s", id))
	}
	if c.status == StatusRunning || c.starting {
		c.mu.Unlock()
		return State{}, errdefs.NotModified(fmt.Errorf("container %s is already running", id))
	}
	p, err := c.pipesLocked()
	if err != nil {
		c.mu.Unlock()
		return State{}, err
	}
	c.starting = true
	c.execs = map[string]*execProc{}
	c.mu.Unlock()

	proc, logw, drained, err := c.launch(ctx, p)
	if err != nil {
		c.endRun(p, logw, drained)
		c.mu.Lock()
		c.starting = false
		if c.io == p {
			c.io = nil
		}
		att := c.takeAttachersLocked()
		c.mu.Unlock()
		for a := range att {
			a.finish()
		}
		return State{}, err
	}

	c.mu.Lock()
	c.starting, c.live = false, true
	c.status, c.proc, c.pid = StatusRunning, proc, proc.Pid()
	c.startedAt, c.endedAt, c.exit = time.Now().UTC(), time.Time{}, ExitStatus{}
	st := c.stateLocked()
	c.mu.Unlock()
	c.persist()
	go c.wait(proc, p, logw, drained)
	return st, nil
}

// launch starts the output copiers, then the process. On error the caller still ends the run with the
// returned log writer and drained channel (either may be nil).
func (c *container) launch(ctx context.Context, p *pipes) (Proc, *logs.Writer, chan struct{}, error) {
	l, err := c.s.launcherFor(c.opts.Runtime)
	if err != nil {
		return nil, nil, nil, err
	}
	var logw *logs.Writer
	if c.opts.LogPath != "" {
		if logw, err = logs.NewWriter(c.opts.LogPath); err != nil {
			return nil, nil, nil, err
		}
	}
	if c.opts.Tty && builtinRuntime(c.opts.Runtime) {
		if err := bindPtsInBundle(c.opts.Bundle, c.dir, p.stdoutW); err != nil {
			return nil, logw, nil, fmt.Errorf("giving the container its terminal: %w", err)
		}
	}
	stdin := p.stdinR
	if stdin == nil {
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return nil, logw, nil, err
		}
		defer devnull.Close()
		stdin = devnull
	}

	// Copy before the process runs, so its first byte is logged and seen by clients attached already.
	drained := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go c.pump(p.stdoutR, logs.StreamStdout, "stdout", logw, &wg)
	if p.stderrR != nil {
		wg.Add(1)
		go c.pump(p.stderrR, logs.StreamStderr, "stderr", logw, &wg)
	}
	go func() {
		wg.Wait()
		close(drained)
	}()

	c.s.launchMu.RLock()
	proc, err := l.Launch(ctx, c.opts.ID, c.opts.Bundle, c.opts.Runtime, Stdio{Stdin: stdin, Stdout: p.stdoutW, Stderr: p.stderrW})
	if err == nil {
		c.s.exempt.Store(proc.Pid(), struct{}{})
		if h, ok := proc.(HelperProc); ok {
			c.s.exempt.Store(h.HelperPid(), struct{}{})
		}
	}
	c.s.launchMu.RUnlock()
	// Only the container holds the write ends now, so its exit gives the copiers EOF.
	p.closeChildEnds()
	return proc, logw, drained, err
}

// pump copies one output stream into the log and to attached clients until the container and everything
// that inherited the pipe have closed it (a terminal's master reads EIO then).
func (c *container) pump(r *os.File, stream byte, name string, logw *logs.Writer, wg *sync.WaitGroup) {
	defer wg.Done()
	defer r.Close()
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	buf := *bp
	logFailed := false
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if logw != nil {
				// A full disk must not stop the container: keep draining and fanning out.
				if werr := logw.Write(name, buf[:n], time.Now()); werr != nil && !logFailed {
					logFailed = true
					c.s.log.Error("writing container log", "id", c.opts.ID, "err", werr)
				}
			}
			c.fanout(stream, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

func (c *container) fanout(stream byte, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for a := range c.attachers {
		a.send(stream, p)
	}
}

// endRun waits for the output to drain, then closes the log. Output still flowing drainTimeout after the
// end (a daemon left holding the pipe) is cut off so the exit gets reported.
func (c *container) endRun(p *pipes, logw *logs.Writer, drained chan struct{}) {
	p.closeStdin()
	if drained == nil {
		p.closeAll()
	} else {
		t := time.NewTimer(drainTimeout)
		select {
		case <-drained:
		case <-t.C:
			p.closeAll()
			<-drained
		}
		t.Stop()
	}
	if logw != nil {
		if err := logw.Close(); err != nil {
			c.s.log.Error("closing container log", "id", c.opts.ID, "err", err)
		}
	}
}

// wait reaps the process, then reports the exit once its output is in the log.
func (c *container) wait(proc Proc, p *pipes, logw *logs.Writer, drained chan struct{}) {
	st, err := proc.Wait()
	if err != nil {
		c.s.log.Error("waiting for container", "id", c.opts.ID, "err", err)
	}
	c.mu.Lock()
	c.live = false
	c.mu.Unlock()
	c.s.exempt.Delete(proc.Pid())
	if h, ok := proc.(HelperProc); ok {
		c.s.exempt.Delete(h.HelperPid())
	}

	c.endRun(p, logw, drained)

	c.mu.Lock()
	c.status, c.exit, c.endedAt, c.proc = StatusExited, st, time.Now().UTC(), nil
	if c.io == p {
		c.io = nil
	}
	att := c.takeAttachersLocked()
	ev := Exit{ID: c.opts.ID, ExitCode: st.Code, Signal: st.Signal, OOMKilled: st.OOMKilled, FinishedAt: c.endedAt}
	c.mu.Unlock()
	c.persist()
	c.s.publish(ev)
	for a := range att {
		a.finish()
	}
}

func (c *container) signal(sig unix.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.deleted {
		return errdefs.Conflict(errors.New("container not running"))
	}
	if err := unix.Kill(c.pid, sig); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errdefs.Conflict(errors.New("container not running"))
		}
		return err
	}
	return nil
}

// remove forgets a container that is not running and removes its directory.
func (c *container) remove() error {
	c.mu.Lock()
	if c.status == StatusRunning || c.starting {
		c.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("cannot remove container %s: it is running", c.opts.ID))
	}
	c.deleted = true
	att := c.takeAttachersLocked()
	p := c.io
	c.io = nil
	c.mu.Unlock()
	c.ln.Close()
	for a := range att {
		a.kill()
	}
	if p != nil {
		p.closeAll()
	}
	if c.opts.Tty {
		if err := unmountPts(c.dir); err != nil {
			return err
		}
	}
	// Only our own files: the directory may be shared, and a recursive delete must never be able to walk
	// into something mounted below it.
	for _, f := range []string{c.attachSocket(), filepath.Join(c.dir, "monitor.json")} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	if err := os.Remove(c.dir); err != nil && !os.IsNotExist(err) && !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	return nil
}
