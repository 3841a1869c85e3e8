package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/moby/term"
)

// pumpStreams copies a hijacked attach connection to the user's streams. The returned channel yields
// once all output is copied (the container closed its side); stdin is pumped in the background and the
// connection's write side is closed on EOF so the container sees EOF too.
func pumpStreams(resp types.HijackedResponse, tty bool, in io.Reader, out, errw io.Writer) <-chan error {
	done := make(chan error, 1)
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
		go func() {
			_, _ = io.Copy(resp.Conn, in)
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

// resizeToTerminal gives the container's TTY the size of the user's terminal.
func resizeToTerminal(ctx context.Context, c *client.Client, id string, out io.Writer) {
	fd, ok := terminalFd(out)
	if !ok {
		return
	}
	ws, err := term.GetWinsize(fd)
	if err != nil || ws.Height == 0 {
		return
	}
	_ = c.ContainerResize(ctx, id, container.ResizeOptions{Height: uint(ws.Height), Width: uint(ws.Width)})
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
