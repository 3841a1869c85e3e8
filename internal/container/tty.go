package container

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/moby/term"

	"github.com/berth-dev/berth/internal/errdefs"
)

// defaultDetachKeys is Docker's ctrl-p ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// ErrDetached ends an attach or exec session whose client typed the detach keys: the container (or the
// exec'd process) keeps running.
var ErrDetached = errors.New("detached")

// copyInput copies a client's input to a container's stdin. On a TTY it watches for the detach keys
// (keys in Docker's notation, "ctrl-p,ctrl-q"; "" or invalid for the default) and returns ErrDetached
// when they arrive, without passing them on; an incomplete sequence followed by something else is
// passed on whole. Without a TTY the input is copied untouched, as Docker does: it may be binary.
// It returns nil when the client half-closes.
func copyInput(dst io.Writer, src io.Reader, tty bool, keys string) error {
	if !tty {
		_, err := io.Copy(dst, src)
		return err
	}
	seq := defaultDetachKeys
	if keys != "" {
		if b, err := term.ToBytes(keys); err == nil && len(b) > 0 {
			seq = b
		}
	}
	_, err := io.Copy(dst, term.NewEscapeProxy(src, seq))
	var esc term.EscapeError
	if errors.As(err, &esc) {
		return ErrDetached
	}
	return err
}

// Resize sets the size of a running container's TTY; the process gets SIGWINCH. A container without a
// TTY has nothing to size, which is not an error.
func (s *Service) Resize(ctx context.Context, ref string, height, width uint) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	id, running := c.rec.ID, c.running()
	c.mu.Unlock()
	if !running {
		return errdefs.Conflict(fmt.Errorf("container %s is not running", id))
	}
	m, ok := s.cfg.Monitor.(ExecMonitor)
	if !ok {
		return nil
	}
	return m.Resize(ctx, id, "", height, width)
}

// rawWriter strips Docker's stdcopy frames from what is written to it and passes the payloads on: the
// log of a TTY container is one raw stream, and Docker serves it (logs, attach with logs) unframed.
type rawWriter struct {
	w    io.Writer
	head [8]byte
	nh   int // header bytes seen of the current frame
	left int // payload bytes left in the current frame
}

// ttyWriter is w itself without a TTY, and a rawWriter over w with one.
func ttyWriter(w io.Writer, tty bool) io.Writer {
	if !tty {
		return w
	}
	return &rawWriter{w: w}
}

func (r *rawWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if r.left == 0 {
			k := copy(r.head[r.nh:], p)
			r.nh += k
			p = p[k:]
			if r.nh < len(r.head) {
				break
			}
			r.nh = 0
			r.left = int(r.head[4])<<24 | int(r.head[5])<<16 | int(r.head[6])<<8 | int(r.head[7])
			continue
		}
		k := min(r.left, len(p))
		if _, err := r.w.Write(p[:k]); err != nil {
			return n - len(p), err
		}
		r.left -= k
		p = p[k:]
	}
	return n, nil
}
