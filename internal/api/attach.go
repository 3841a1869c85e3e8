package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// containerAttach serves POST /containers/{id}/attach. It takes the connection over from net/http, writes
// the upgrade response itself and gives the raw connection to the backend, which streams both ways.
func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	opts := AttachOptions{
		Stdin:      queryBool(r, "stdin"),
		Stdout:     queryBool(r, "stdout"),
		Stderr:     queryBool(r, "stderr"),
		Stream:     queryBool(r, "stream"),
		Logs:       queryBool(r, "logs"),
		DetachKeys: r.URL.Query().Get("detachKeys"),
	}
	tty, err := s.hasTTY(r.Context(), id)
	if err != nil {
		return err
	}
	// The session lives as long as the hijacked connection, not the request: net/http may cancel the
	// request's context when the client half-closes, which clients without stdin do at once.
	ctx, cancel := s.streamContext(context.WithoutCancel(r.Context()))
	defer cancel()
	// The attach is registered before the client hears back: `docker run` starts the container as soon as
	// it has the response, and output written before registration would be lost.
	stream, err := s.containers.Attach(ctx, id, opts)
	if err != nil {
		return err
	}
	return s.runHijacked(w, r, tty, stream, "attach ended with an error", "container", id)
}

// runHijacked takes over the connection of a streaming request (attach, exec start), answers it with
// Docker's upgrade head, and runs stream on it until the session ends. Once the connection is taken
// there is nobody to return an error to, so later failures are logged with what and the key/value
// pair; only a connection that cannot be taken over is returned, for an ordinary error response.
func (s *Server) runHijacked(w http.ResponseWriter, r *http.Request, tty bool, stream func(net.Conn) error, what, key, val string) error {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("streaming needs a hijackable connection: %w", err)
	}
	untrack := s.trackHijacked(conn)
	defer func() {
		untrack()
		conn.Close()
	}()
	// The server may have left its header-read deadline on the connection; a session lasts as long as it lasts.
	_ = conn.SetDeadline(time.Time{})

	status := http.StatusOK
	head := "HTTP/1.1 200 OK\r\nContent-Type: " + outputMediaType(r.Context(), tty) + "\r\n\r\n"
	if r.Header.Get("Upgrade") != "" {
		status = http.StatusSwitchingProtocols
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + outputMediaType(r.Context(), tty) +
			"\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
	}
	if rec, ok := w.(*recorder); ok {
		rec.status = status
	}
	if _, err := conn.Write([]byte(head)); err != nil {
		return nil // the client is gone before the session began
	}
	err = stream(wrapHijacked(conn, brw.Reader))
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, net.ErrClosed) {
		s.log.Warn(what, key, val, "error", err)
	}
	return nil
}

// hijackedConn reads through the server's buffer, which may already hold stdin the client sent right
// after its request.
type hijackedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *hijackedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// halfCloser is a connection whose write side can be closed alone, so the client sees the end of output
// while it may still send stdin.
type halfCloser interface {
	CloseWrite() error
}

type hijackedHalfConn struct {
	*hijackedConn
}

func (c hijackedHalfConn) CloseWrite() error { return c.Conn.(halfCloser).CloseWrite() }

func wrapHijacked(conn net.Conn, r *bufio.Reader) net.Conn {
	hc := &hijackedConn{Conn: conn, r: r}
	if _, ok := conn.(halfCloser); ok {
		return hijackedHalfConn{hc}
	}
	return hc
}
