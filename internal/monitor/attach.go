package monitor

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/logs"
)

const (
	// maxAttachBacklog bounds what the monitor holds for one attached client that reads slower than the
	// container writes; beyond it that client's output is dropped (the log still has everything).
	maxAttachBacklog = 256 * 1024
	// attachFlushTimeout is how long a finished run's remaining output may take to reach a client.
	attachFlushTimeout = 30 * time.Second
)

// attacher is one client on a container's attach socket. Output is queued by the copiers without
// blocking and written by the attacher's own goroutine.
type attacher struct {
	conn           *net.UnixConn
	stdout, stderr bool
	// raw sends output as is, without stdcopy frames: a terminal has one stream, as in Docker.
	raw bool

	mu        sync.Mutex
	buf       []byte // framed output not written yet
	finishing bool   // flush buf, then close
	dead      bool
	dropped   int
	wake      chan struct{}
}

func (c *container) acceptAttach() {
	for {
		conn, err := c.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond) // EMFILE and friends: do not spin
			continue
		}
		go c.serveAttach(conn)
	}
}

func (c *container) serveAttach(conn *net.UnixConn) {
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	line, err := br.ReadSlice('\n')
	if err != nil {
		conn.Close()
		return
	}
	var o AttachOptions
	if err := json.Unmarshal(line, &o); err != nil {
		writeLine(conn, response{Error: "bad attach request: " + err.Error()})
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})

	a := &attacher{conn: conn, stdout: o.Stdout, stderr: o.Stderr, raw: c.opts.Tty, wake: make(chan struct{}, 1)}
	c.mu.Lock()
	if c.deleted {
		c.mu.Unlock()
		writeLine(conn, response{Error: "No such container: " + c.opts.ID, Kind: "notfound"})
		conn.Close()
		return
	}
	p, err := c.pipesLocked()
	if err != nil {
		c.mu.Unlock()
		writeLine(conn, response{Error: err.Error()})
		conn.Close()
		return
	}
	// The answer goes first in the queue: everything after it is framed output.
	a.buf = append(a.buf, "{}\n"...)
	c.attachers[a] = struct{}{}
	c.mu.Unlock()
	go a.writeLoop(func() { c.detach(a) })

	var stdin io.Writer
	if o.Stdin && c.opts.OpenStdin {
		stdin = p.stdinW
	}
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	for {
		n, err := br.Read(*bp)
		if n > 0 && stdin != nil {
			if _, werr := stdin.Write((*bp)[:n]); werr != nil {
				stdin = nil // the run ended or stdin was closed: discard the rest
			}
		}
		if err == nil {
			continue
		}
		if errors.Is(err, io.EOF) {
			// The client closed its side (CloseWrite): it still wants the output.
			if stdin != nil && c.opts.StdinOnce {
				p.closeStdin()
			}
			return
		}
		c.detach(a)
		a.kill()
		return
	}
}

func (c *container) detach(a *attacher) {
	c.mu.Lock()
	delete(c.attachers, a)
	c.mu.Unlock()
}

func (a *attacher) signal() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// send queues one frame (or, raw, the bytes alone); it never blocks.
func (a *attacher) send(stream byte, p []byte) {
	if a.raw {
		if !a.stdout && !a.stderr {
			return
		}
	} else if (stream == logs.StreamStdout && !a.stdout) || (stream == logs.StreamStderr && !a.stderr) {
		return
	}
	a.mu.Lock()
	if a.dead || a.finishing {
		a.mu.Unlock()
		return
	}
	if len(a.buf)+8+len(p) > maxAttachBacklog {
		a.dropped += len(p)
		a.mu.Unlock()
		return
	}
	if n := len(p); !a.raw {
		a.buf = append(a.buf, stream, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	a.buf = append(a.buf, p...)
	a.mu.Unlock()
	a.signal()
}

// finish flushes what is queued and then closes the connection: the run is over.
func (a *attacher) finish() {
	a.mu.Lock()
	a.finishing = true
	a.mu.Unlock()
	// Also bounds a write already blocked on a client that stopped reading.
	a.conn.SetWriteDeadline(time.Now().Add(attachFlushTimeout))
	a.signal()
}

func (a *attacher) kill() {
	a.mu.Lock()
	a.dead = true
	a.mu.Unlock()
	a.conn.Close()
	a.signal()
}

func (a *attacher) writeLoop(done func()) {
	defer done()
	var out []byte
	for {
		a.mu.Lock()
		for len(a.buf) == 0 && !a.finishing && !a.dead {
			a.mu.Unlock()
			<-a.wake
			a.mu.Lock()
		}
		if a.dead {
			a.mu.Unlock()
			return
		}
		out, a.buf = a.buf, out[:0]
		a.mu.Unlock()
		if len(out) == 0 { // finishing and flushed
			a.kill()
			return
		}
		if _, err := a.conn.Write(out); err != nil {
			a.kill()
			return
		}
		if cap(out) > 64*1024 {
			out = nil // do not keep a burst's buffer for the life of the attach
		}
	}
}
