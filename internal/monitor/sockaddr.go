package monitor

import (
	"context"
	"net"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxSunPath is the room for a socket path in sockaddr_un, including the terminating NUL.
const maxSunPath = 108

// withShortPath calls fn with an address that reaches path. A 64-character container id under a long exec
// root (a test's temp dir) overflows sockaddr_un, so then the directory is opened and the socket named
// through /proc/self/fd/N, which the kernel resolves like any other path.
func withShortPath(path string, fn func(addr string) error) error {
	if len(path) < maxSunPath {
		return fn(path)
	}
	fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return fn("/proc/self/fd/" + strconv.Itoa(fd) + "/" + filepath.Base(path))
}

func listenUnix(path string) (*net.UnixListener, error) {
	var ln *net.UnixListener
	err := withShortPath(path, func(addr string) error {
		var err error
		ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
		return err
	})
	if err != nil {
		return nil, err
	}
	// The name it was bound with may be a /proc/self/fd path that means something else later.
	ln.SetUnlinkOnClose(false)
	if err := unix.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

func dialUnix(ctx context.Context, path string) (*net.UnixConn, error) {
	var conn net.Conn
	err := withShortPath(path, func(addr string) error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "unix", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	return conn.(*net.UnixConn), nil
}
