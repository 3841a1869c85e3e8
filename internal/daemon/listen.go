package daemon

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-connections/tlsconfig"
)

// DefaultSocketGroup owns the unix socket when it exists (dockerd's "docker" group): its members can use
// the API without sudo. A missing default group is not an error; a missing group named with -G is.
const DefaultSocketGroup = "berth"

// ListenOptions say how the API is exposed: which addresses, who may use the unix socket, and the TLS
// that a tcp:// address must have.
type ListenOptions struct {
	// Hosts are the -H addresses: unix:///path, tcp://host:port or fd:// (not supported).
	Hosts []string
	// SocketGroup owns unix sockets (mode 0660); "" means root.
	SocketGroup string
	// TLS serves tcp:// addresses over TLS with TLSCert/TLSKey; TLSVerify also requires every client to
	// present a certificate signed by TLSCACert (mutual TLS), which is what makes a tcp:// API safe.
	TLS, TLSVerify             bool
	TLSCACert, TLSCert, TLSKey string
	// InsecureTCP allows tcp:// without TLS. Anyone who can reach the port is root on this host then.
	InsecureTCP bool
}

// errInsecureTCP is the refusal to serve the API unauthenticated on the network; its wording names
// both ways out, because the person reading it is deciding between them.
const errInsecureTCP = "refusing to listen on %s without TLS: the API gives root on this host to anyone who can reach it. " +
	"Use --tlsverify with --tlscacert, --tlscert and --tlskey (clients must present a certificate signed by that CA), " +
	"or pass --insecure-tcp to accept the risk"

// check validates the combination before anything is opened, so a mistake costs no state.
func (o ListenOptions) check() error {
	tcp := false
	for _, h := range o.Hosts {
		proto, _, ok := strings.Cut(h, "://")
		if (proto == "unix" || !ok) && o.SocketGroup != "" {
			if _, err := socketGID(o.SocketGroup); err != nil {
				return err
			}
		}
		if proto == "tcp" {
			tcp = true
			if !o.TLS && !o.TLSVerify && !o.InsecureTCP {
				return fmt.Errorf(errInsecureTCP, h)
			}
		}
	}
	if !tcp || (!o.TLS && !o.TLSVerify) {
		return nil
	}
	if o.TLSCert == "" || o.TLSKey == "" {
		return errors.New("--tls and --tlsverify need --tlscert and --tlskey (the server's certificate and key)")
	}
	if o.TLSVerify && o.TLSCACert == "" {
		return errors.New("--tlsverify needs --tlscacert: the CA that signs the certificates of allowed clients")
	}
	return nil
}

// serverTLS is the TLS configuration of tcp:// listeners, or nil for plain TCP.
func (o ListenOptions) serverTLS() (*tls.Config, error) {
	if !o.TLS && !o.TLSVerify {
		return nil, nil
	}
	opts := tlsconfig.Options{CertFile: o.TLSCert, KeyFile: o.TLSKey, ClientAuth: tls.NoClientCert}
	if o.TLSVerify {
		opts.CAFile = o.TLSCACert
		opts.ClientAuth = tls.RequireAndVerifyClientCert
	}
	cfg, err := tlsconfig.Server(opts)
	if err != nil {
		return nil, fmt.Errorf("loading TLS certificates: %w", err)
	}
	// HTTP/1.1 only: attach and exec hijack the connection, which HTTP/2 cannot do.
	cfg.NextProtos = []string{"http/1.1"}
	return cfg, nil
}

// listenAll opens every -H address, or none if one fails.
func listenAll(o ListenOptions, log *slog.Logger) ([]net.Listener, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	tlsCfg, err := o.serverTLS()
	if err != nil {
		return nil, err
	}
	var ls []net.Listener
	for _, h := range o.Hosts {
		l, err := listenOne(h, o, tlsCfg, log)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func listenOne(addr string, o ListenOptions, tlsCfg *tls.Config, log *slog.Logger) (net.Listener, error) {
	proto, rest, ok := strings.Cut(addr, "://")
	if !ok {
		proto, rest = "unix", addr
	}
	switch proto {
	case "unix":
		return listenUnix(rest, o.SocketGroup)
	case "tcp":
		hostport := strings.TrimSuffix(rest, "/")
		if _, _, err := net.SplitHostPort(hostport); err != nil {
			// dockerd's defaults: 2376 with TLS, 2375 without.
			port := "2375"
			if tlsCfg != nil {
				port = "2376"
			}
			hostport = net.JoinHostPort(strings.Trim(hostport, "[]"), port)
		}
		l, err := net.Listen("tcp", hostport)
		if err != nil {
			return nil, err
		}
		switch {
		case tlsCfg == nil:
			log.Warn("!!! The API is served on " + l.Addr().String() + " WITHOUT TLS (--insecure-tcp): anyone who can " +
				"reach this port can run containers as root on this host. Use --tlsverify unless this port is firewalled !!!")
			return l, nil
		case !o.TLSVerify:
			log.Warn("The API on " + l.Addr().String() + " uses TLS but does not verify clients (--tls without " +
				"--tlsverify): anyone who can reach this port can run containers as root on this host")
		}
		return tls.NewListener(l, tlsCfg), nil
	}
	return nil, fmt.Errorf("%s: unsupported protocol %q (use unix:// or tcp://)", addr, proto)
}

// listenUnix opens a unix socket with mode 0660, owned by root and group (root's group when group is ""
// or is the default group and does not exist).
func listenUnix(path, group string) (net.Listener, error) {
	gid, err := socketGID(group)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// A socket file left by a crashed daemon would make listen fail; our root lock says nobody serves it.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use by another daemon", path)
		}
		_ = os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// Chmod after listen leaves a short window with the umask's mode; the directory (0711 exec root, or
	// the user's own) is what guards it meanwhile, as with dockerd.
	if err := os.Chown(path, 0, gid); err != nil {
		l.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// socketGID resolves -G: a group name or a numeric gid.
func socketGID(group string) (int, error) {
	if group == "" {
		return 0, nil
	}
	g, err := user.LookupGroup(group)
	if err == nil {
		return strconv.Atoi(g.Gid)
	}
	if n, nerr := strconv.Atoi(group); nerr == nil && n >= 0 {
		return n, nil
	}
	if group == DefaultSocketGroup {
		return 0, nil
	}
	return 0, fmt.Errorf("--group %s: no such group (create it, or use -G \"\" for a root-only socket)", group)
}
