package cli

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/moby/term"
)

// errDetached is what a session's channel yields when the user typed the detach keys: the container
// keeps running and berth exits 0, as docker does.
var errDetached = errors.New("detached from the container")

// defaultDetachKeys is docker's ctrl-p,ctrl-q.
var defaultDetachKeys = []byte{16, 17}

// pumpStreams copies a hijacked attach connection to the user's streams. The returned channel yields
// once all output is copied (the container closed its side), or errDetached as soon as the user types
// the detach keys on a TTY (keys in docker's notation; "" for ctrl-p,ctrl-q). stdin is pumped in the
// background and the connection's write side is closed on EOF so the container sees EOF too.
func pumpStreams(resp types.HijackedResponse, tty bool, in io.Reader, out, errw io.Writer, detachKeys string) <-chan error {
	done := make(chan error, 2)
	go func() {
		var err error
		if tty {
			_, err = io.Copy(out, resp.Reader)
		} else {
			_, err = stdcopy.StdCopy(out, errw, resp.Reader)
		}
		done <- err
	}()
	if in != nil {
		if tty {
			keys := defaultDetachKeys
			if b, err := term.ToBytes(detachKeys); err == nil && len(b) > 0 {
				keys = b
			}
			in = term.NewEscapeProxy(in, keys)
		}
		go func() {
			_, err := io.Copy(resp.Conn, in)
			var esc term.EscapeError
			if errors.As(err, &esc) {
				done <- errDetached
				resp.Close()
				return
			}
			_ = resp.CloseWrite()
		}()
	}
	return done
}

// terminalFd reports whether r is a terminal, and its fd.
func terminalFd(r any) (uintptr, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	return f.Fd(), term.IsTerminal(f.Fd())
}

// makeRaw puts the user's terminal in raw mode for a TTY session and returns how to undo it.
func makeRaw(in io.Reader) func() {
	fd, ok := terminalFd(in)
	if !ok {
		return func() {}
	}
	st, err := term.SetRawTerminal(fd)
	if err != nil {
		return func() {}
	}
	return func() { _ = term.RestoreTerminal(fd, st) }
}

// watchTerminalSize gives a TTY the size of the user's terminal now and after every SIGWINCH, through
// resize (the container's or an exec's resize endpoint), until the returned stop is called.
func watchTerminalSize(ctx context.Context, out io.Writer, resize func(ctx context.Context, height, width uint) error) (stop func()) {
	fd, ok := terminalFd(out)
	if !ok {
		return func() {}
	}
	apply := func() {
		if ws, err := term.GetWinsize(fd); err == nil && ws.Height > 0 {
			_ = resize(ctx, uint(ws.Height), uint(ws.Width))
		}
	}
	apply()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-ch:
				apply()
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}

// terminalSize is the user's terminal as [height, width], for ConsoleSize; nil when out is no terminal.
func terminalSize(out io.Writer) *[2]uint {
	fd, ok := terminalFd(out)
	if !ok {
		return nil
	}
	ws, err := term.GetWinsize(fd)
	if err != nil || ws.Height == 0 {
		return nil
	}
	return &[2]uint{uint(ws.Height), uint(ws.Width)}
}

// proxySignals forwards the signals a user sends berth to the container (docker's --sig-proxy), so ^C
// stops the container rather than just detaching from it. Call the returned func to stop forwarding.
func proxySignals(ctx context.Context, c *client.Client, id string) func() {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if n, ok := s.(syscall.Signal); ok {
					_ = c.ContainerKill(ctx, id, strconv.Itoa(int(n)))
				}
			case <-stop:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(stop)
	}
}
