package container

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logs"
	"github.com/docker/docker/api/types/container"
)

// AttachOptions selects the streams of an attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr, Stream, Logs bool
	// DetachKeys ends the session (not the container) when typed on a TTY's stdin; "" for ctrl-p,ctrl-q.
	DetachKeys string
}

// pendingAttach is an attach that arrived before the container's process exists (docker run attaches,
// then starts). Start connects it to the monitor before the process runs, so no output is missed.
type pendingAttach struct {
	ready     chan error    // Start sends nil once the monitor is ready, or the start error
	connected chan struct{} // closed once the attacher holds its monitor connection, or gave up
	once      sync.Once
}

// done tells a waiting Start that this attach needs no more waiting for. It never takes c.mu: Start
// holds it while it waits.
func (p *pendingAttach) done() { p.once.Do(func() { close(p.connected) }) }

// connectPending lets every waiting attach connect to the monitor, and waits (bounded) until they have.
// c.mu is held.
func (s *Service) connectPending(ctx context.Context, c *ctr) {
	pend := c.pending
	c.pending = nil
	for _, p := range pend {
		p.ready <- nil
	}
	deadline := time.After(5 * time.Second)
	for _, p := range pend {
		select {
		case <-p.connected:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

// failPending releases waiting attaches after a failed start. c.mu is held.
func (s *Service) failPending(c *ctr) {
	for _, p := range c.pending {
		p.ready <- fmt.Errorf("container failed to start")
	}
	c.pending = nil
}

// Attach registers an attach session and returns the function that streams it over a connection:
// the container's output to conn (in Docker's multiplexed framing) and conn's input to its stdin, until
// its output ends or the client goes away. Registering first matters: `docker run` starts the container
// as soon as its attach is answered, and a container that is not running yet is connected to the
// monitor by Start before its process runs, so not a byte is missed.
func (s *Service) Attach(ctx context.Context, ref string, opts AttachOptions) (func(conn net.Conn) error, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	var p *pendingAttach
	c.mu.Lock()
	if opts.Stream && !c.running() {
		p = &pendingAttach{ready: make(chan error, 1), connected: make(chan struct{})}
		c.pending = append(c.pending, p)
		// If the stream never runs (the client left), a Start must not wait for it.
		go func() { <-ctx.Done(); p.done() }()
	}
	// Read here, not in the stream: a Start holds c.mu while it waits for this attach to connect, so
	// a stream that took c.mu first thing would stall that Start until its wait timed out.
	st := attachTarget{id: c.rec.ID, logPath: c.rec.LogPath, tty: c.rec.Config.Tty}
	c.mu.Unlock()
	return func(conn net.Conn) error { return s.attach(ctx, st, opts, conn, p) }, nil
}

type attachTarget struct {
	id, logPath string
	tty         bool
}

func (s *Service) attach(ctx context.Context, st attachTarget, opts AttachOptions, conn net.Conn, p *pendingAttach) error {
	id, logPath, tty := st.id, st.logPath, st.tty
	if opts.Logs {
		err := logs.Read(ctx, logPath, logs.ReadOptions{Stdout: opts.Stdout, Stderr: opts.Stderr, Tail: -1}, ttyWriter(conn, tty), nil)
		if err != nil {
			return err
		}
	}
	if !opts.Stream {
		return nil
	}
	// With p nil the container was running when the attach came; if it has stopped since, the monitor
	// refuses and the session ends.
	if p != nil {
		defer p.done()
		select {
		case err := <-p.ready:
			if err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
	mc, err := s.cfg.Monitor.Attach(ctx, id, opts.Stdin, opts.Stdout, opts.Stderr)
	if p != nil {
		p.done()
	}
	if err != nil {
		return err
	}
	defer mc.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// A half-close (EOF) ends stdin, not the session: clients without stdin half-close at once. Any
		// other read error means the client is gone.
		var err error
		if opts.Stdin {
			if err = copyInput(mc, conn, tty, opts.DetachKeys); err == nil {
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
	return err
}

// Logs writes a container's logs to w in Docker's multiplexed framing, or raw for a TTY container.
func (s *Service) Logs(ctx context.Context, ref string, opts container.LogsOptions, w io.Writer) error {
	return s.readLogs(ctx, ref, opts, w, false)
}

// LogEntries writes a container's logs to w in the multiplexed framing even for a TTY container: one
// frame per log entry, which is what a reader that needs each entry's stream and time (the cluster's
// task logs) parses.
func (s *Service) LogEntries(ctx context.Context, ref string, opts container.LogsOptions, w io.Writer) error {
	return s.readLogs(ctx, ref, opts, w, true)
}

func (s *Service) readLogs(ctx context.Context, ref string, opts container.LogsOptions, w io.Writer, framed bool) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	if !opts.ShowStdout && !opts.ShowStderr {
		return errdefs.InvalidParameter(fmt.Errorf("you must choose at least one stream"))
	}
	ro := logs.ReadOptions{Stdout: opts.ShowStdout, Stderr: opts.ShowStderr, Follow: opts.Follow, Timestamps: opts.Timestamps, Tail: -1}
	if opts.Tail != "" && opts.Tail != "all" {
		n, err := strconv.Atoi(opts.Tail)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid value for \"tail\": %q", opts.Tail))
		}
		if n >= 0 {
			ro.Tail = n
		}
	}
	if ro.Since, err = parseTimestamp(opts.Since); err != nil {
		return errdefs.InvalidParameter(err)
	}
	if ro.Until, err = parseTimestamp(opts.Until); err != nil {
		return errdefs.InvalidParameter(err)
	}
	c.mu.Lock()
	logPath, tty := c.rec.LogPath, c.rec.Config.Tty
	stopped := c.exited
	if !c.running() || stopped == nil {
		stopped = closedChan
	}
	c.mu.Unlock()
	return logs.Read(ctx, logPath, ro, ttyWriter(w, tty && !framed), stopped)
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// parseTimestamp reads the API's time parameters: Unix seconds with optional fraction ("1700000000.5"),
// which is what the CLI sends after resolving durations and dates.
func parseTimestamp(v string) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		if t, err2 := time.Parse(time.RFC3339Nano, v); err2 == nil {
			return t, nil
		}
		return time.Time{}, fmt.Errorf("invalid timestamp %q", v)
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("invalid timestamp %q", v)
		}
	}
	return time.Unix(s, ns), nil
}
