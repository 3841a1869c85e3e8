package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Client talks to the monitor of one exec root. Each call is one connection, so a Client is safe for
// concurrent use and survives a monitor restart.
type Client struct {
	execRoot string
}

// Dial returns a client for the monitor serving execRoot, after checking that it answers.
func Dial(ctx context.Context, execRoot string) (*Client, error) {
	c := &Client{execRoot: execRoot}
	if err := c.Ping(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Ensure dials the monitor of execRoot and, if none answers, starts one with cmd (typically berthd
// re-executed with argv[0] "berth-monitor" and --exec-root) and waits until it serves. The monitor is
// started detached: its own session, stdin /dev/null, output appended to <exec-root>/monitor.log, and not
// tied to ctx, so it outlives the caller. If two callers race, the loser's monitor exits on the lock and
// both end up with the winner.
func Ensure(ctx context.Context, execRoot string, cmd func() *exec.Cmd) (*Client, error) {
	if c, err := Dial(ctx, execRoot); err == nil {
		return c, nil
	}
	if err := os.MkdirAll(execRoot, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(execRoot, "monitor.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	m := cmd()
	m.Stdin, m.Stdout, m.Stderr = nil, logf, logf
	if m.SysProcAttr == nil {
		m.SysProcAttr = &syscall.SysProcAttr{}
	}
	m.SysProcAttr.Setsid = true
	m.SysProcAttr.Pdeathsig = 0
	if m.Dir == "" {
		m.Dir = "/" // do not keep the daemon's working directory busy for the monitor's lifetime
	}
	err = m.Start()
	logf.Close()
	if err != nil {
		return nil, fmt.Errorf("starting monitor: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- m.Wait() }() // reap it if it dies while we live

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if c, err := Dial(ctx, execRoot); err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, errdefs.Unavailable(fmt.Errorf("monitor did not start (see %s): %w", filepath.Join(execRoot, "monitor.log"), ctx.Err()))
		case err := <-exited:
			// Exit 0 means another monitor won the lock: keep dialling it.
			if err != nil {
				return nil, errdefs.Unavailable(fmt.Errorf("monitor exited: %v (see %s)", err, filepath.Join(execRoot, "monitor.log")))
			}
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *Client) call(ctx context.Context, req request) (response, error) {
	conn, err := dialUnix(ctx, SocketPath(c.execRoot))
	if err != nil {
		return response{}, errdefs.Unavailable(fmt.Errorf("monitor: %w", err))
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return response{}, err
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return response{}, ctxErr(ctx, err)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return response{}, ctxErr(ctx, fmt.Errorf("monitor: reading answer to %s: %w", req.Op, err))
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		return response{}, fmt.Errorf("monitor: bad answer to %s: %w", req.Op, err)
	}
	if resp.Error != "" {
		return resp, responseError(resp)
	}
	return resp, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Ping checks that the monitor answers.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.call(ctx, request{Op: opPing})
	return err
}

// Create registers a container; it does not start a process.
func (c *Client) Create(ctx context.Context, o CreateOptions) error {
	_, err := c.call(ctx, request{Op: opCreate, CreateOptions: o})
	return err
}

// Start launches the container's process and returns its pid once it runs. A launch failure comes back
// with the runtime's own message.
func (c *Client) Start(ctx context.Context, id string) (int, error) {
	resp, err := c.call(ctx, request{Op: opStart, CreateOptions: CreateOptions{ID: id}})
	if err != nil {
		return 0, err
	}
	if resp.State == nil {
		return 0, errors.New("monitor: start answered without a pid")
	}
	return resp.State.Pid, nil
}

// Kill sends sig to the container's init; a Conflict error if it is not running.
func (c *Client) Kill(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := c.call(ctx, request{Op: opKill, CreateOptions: CreateOptions{ID: id}, Signal: int(sig)})
	return err
}

// State returns what the monitor knows of one container; NotFound if it does not know it.
func (c *Client) State(ctx context.Context, id string) (State, error) {
	resp, err := c.call(ctx, request{Op: opState, CreateOptions: CreateOptions{ID: id}})
	if err != nil {
		return State{}, err
	}
	if resp.State == nil {
		return State{}, errors.New("monitor: state answered without a state")
	}
	return *resp.State, nil
}

// List returns every container the monitor knows, including exits nobody has seen yet.
func (c *Client) List(ctx context.Context) ([]State, error) {
	resp, err := c.call(ctx, request{Op: opList})
	if err != nil {
		return nil, err
	}
	return resp.Containers, nil
}

// Delete forgets a created or exited container and removes its directory; Conflict while it runs.
func (c *Client) Delete(ctx context.Context, id string) error {
	_, err := c.call(ctx, request{Op: opDelete, CreateOptions: CreateOptions{ID: id}})
	return err
}

// Events subscribes to exits. It returns once the subscription is in place, so an exit that happens after
// it returns is delivered. The channel is closed when ctx is done or the monitor goes away; a daemon then
// re-subscribes and calls List to learn the exits it missed.
func (c *Client) Events(ctx context.Context) (<-chan Exit, error) {
	conn, err := dialUnix(ctx, SocketPath(c.execRoot))
	if err != nil {
		return nil, errdefs.Unavailable(fmt.Errorf("monitor: %w", err))
	}
	b, _ := json.Marshal(request{Op: opEvents})
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, err
	}
	if _, err := br.ReadBytes('\n'); err != nil {
		conn.Close()
		return nil, fmt.Errorf("monitor: subscribing to events: %w", err)
	}
	conn.SetDeadline(time.Time{})
	ch := make(chan Exit)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	go func() {
		defer close(ch)
		defer stop()
		defer conn.Close()
		dec := json.NewDecoder(br)
		for {
			var e Exit
			if err := dec.Decode(&e); err != nil {
				return
			}
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// Attach connects to a container's stdio. It returns once the monitor has registered the client, so a
// Start after it returns is seen from its first byte. Reads return stdout/stderr in stdcopy framing;
// writes go to the container's stdin (when it has one and stdin is true). The conn is a *net.UnixConn:
// CloseWrite ends stdin for a container created with StdinOnce. The monitor closes the connection after
// the run ends and all output was sent.
func (c *Client) Attach(ctx context.Context, id string, stdin, stdout, stderr bool) (net.Conn, error) {
	conn, err := dialUnix(ctx, filepath.Join(containerDir(c.execRoot, id), "attach.sock"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", id))
		}
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	b, _ := json.Marshal(AttachOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	_, err = conn.Write(append(b, '\n'))
	var line []byte
	if err == nil {
		// One byte at a time: what follows the answer is the stream, and it stays in the conn.
		one := make([]byte, 1)
		for {
			if _, err = conn.Read(one); err != nil || one[0] == '\n' {
				break
			}
			line = append(line, one[0])
		}
	}
	if !stop() {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("monitor: attaching to %s: %w", id, err)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		conn.Close()
		return nil, fmt.Errorf("monitor: bad attach answer: %w", err)
	}
	if resp.Error != "" {
		conn.Close()
		return nil, responseError(resp)
	}
	return conn, nil
}

// Exec starts a process in a running container. With o.Attach set, the returned connection is the
// process's stream, connected before it started: reads give its output (stdcopy frames, or raw with a
// TTY), writes go to its stdin, CloseWrite ends its stdin, and the monitor closes the connection once the
// process has exited and its output is sent; its exit code is then in ExecState. Without o.Attach the
// connection is nil and the output is discarded. A process that cannot start returns its runtime's error
// (an InvalidParameter error for a missing or non-executable program).
func (c *Client) Exec(ctx context.Context, o ExecOptions) (ExecState, net.Conn, error) {
	if o.Attach == nil {
		resp, err := c.call(ctx, request{Op: opExec, Exec: &o})
		if err != nil {
			return ExecState{}, nil, err
		}
		if resp.Exec == nil {
			return ExecState{}, nil, errors.New("monitor: exec answered without a state")
		}
		return *resp.Exec, nil, nil
	}
	conn, err := dialUnix(ctx, SocketPath(c.execRoot))
	if err != nil {
		return ExecState{}, nil, errdefs.Unavailable(fmt.Errorf("monitor: %w", err))
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	b, _ := json.Marshal(request{Op: opExec, Exec: &o})
	_, err = conn.Write(append(b, '\n'))
	var line []byte
	if err == nil {
		line, err = readLineUnbuffered(conn)
	}
	if !stop() {
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return ExecState{}, nil, fmt.Errorf("monitor: exec in %s: %w", o.ID, err)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		conn.Close()
		return ExecState{}, nil, fmt.Errorf("monitor: bad exec answer: %w", err)
	}
	if resp.Error != "" {
		conn.Close()
		return ExecState{}, nil, responseError(resp)
	}
	if resp.Exec == nil {
		conn.Close()
		return ExecState{}, nil, errors.New("monitor: exec answered without a state")
	}
	return *resp.Exec, conn, nil
}

// readLineUnbuffered reads one line a byte at a time: what follows it is a stream that stays in conn.
func readLineUnbuffered(conn net.Conn) ([]byte, error) {
	var line []byte
	one := make([]byte, 1)
	for {
		if _, err := conn.Read(one); err != nil {
			return line, err
		}
		if one[0] == '\n' {
			return line, nil
		}
		line = append(line, one[0])
	}
}

// ExecState returns what the monitor knows of one exec; NotFound if it does not know it (any more).
func (c *Client) ExecState(ctx context.Context, id, execID string) (ExecState, error) {
	resp, err := c.call(ctx, request{Op: opExecState, CreateOptions: CreateOptions{ID: id}, ExecID: execID})
	if err != nil {
		return ExecState{}, err
	}
	if resp.Exec == nil {
		return ExecState{}, errors.New("monitor: execState answered without a state")
	}
	return *resp.Exec, nil
}

// Resize sets the terminal size of a container (execID "") or of one of its execs. Sizing something
// without a terminal does nothing.
func (c *Client) Resize(ctx context.Context, id, execID string, height, width uint16) error {
	_, err := c.call(ctx, request{Op: opResize, CreateOptions: CreateOptions{ID: id}, ExecID: execID, Height: height, Width: width})
	return err
}
