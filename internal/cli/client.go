package cli

import (
	"context"
	"crypto/tls"
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/docker/docker/client"
)

// DefaultHost is where berthd listens unless -H, $BERTH_HOST or $DOCKER_HOST say otherwise.
const DefaultHost = "unix:///run/berth/berth.sock"

// defaultAPIVersion is pinned rather than negotiated so that `berth run` costs no ping round trip; an
// older daemon answers the first request with a version error and we fall back once (see engine.do).
const defaultAPIVersion = "1.51"

// resolveHost applies docker's precedence with Berth's own variable first.
func resolveHost(flag string, getenv func(string) string) string {
	if flag != "" {
		return flag
	}
	if h := getenv("BERTH_HOST"); h != "" {
		return h
	}
	if h := getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return DefaultHost
}

// engine owns the SDK client for one invocation. It is created on first use so `berth --help` never
// touches the network or builds HTTP machinery.
type engine struct {
	host string
	// tls gives the TLS configuration for the daemon (nil for none); called once, on first use.
	tls     func() (*tls.Config, error)
	tlsCfg  *tls.Config
	cli     *client.Client
	pinned  bool // the user fixed the version ($DOCKER_API_VERSION): never second-guess it
	retried bool
}

func (e *engine) client() (*client.Client, error) {
	if e.cli != nil {
		return e.cli, nil
	}
	if e.tls != nil {
		cfg, err := e.tls()
		if err != nil {
			return nil, err
		}
		e.tlsCfg, e.tls = cfg, nil
	}
	opts := e.transportOpts()
	if v := os.Getenv("DOCKER_API_VERSION"); v != "" {
		e.pinned = true
		opts = append(opts, client.WithVersion(v))
	} else {
		opts = append(opts, client.WithVersion(defaultAPIVersion))
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, err
	}
	e.cli = c
	return c, nil
}

var maxVersionRE = regexp.MustCompile(`Maximum supported API version is ([0-9]+\.[0-9]+)`)

// do runs fn, and if the daemon rejects our pinned API version, switches to the version it names (or
// negotiates when it names none) and runs fn once more. fn must be safe to repeat: callers that stream a
// request body negotiate up front with ensureVersion instead.
func (e *engine) do(ctx context.Context, fn func(*client.Client) error) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	err = fn(c)
	if err == nil || e.pinned || e.retried || !isVersionError(err) {
		return err
	}
	e.retried = true
	if err := e.downgrade(ctx, err.Error()); err != nil {
		return err
	}
	return fn(e.cli)
}

// ensureVersion settles the API version before a request whose body cannot be replayed (import, load).
func (e *engine) ensureVersion(ctx context.Context) error {
	c, err := e.client()
	if err != nil || e.pinned || e.retried {
		return err
	}
	ping, err := c.Ping(ctx)
	if err != nil {
		return err
	}
	e.retried = true
	if ping.APIVersion != "" && versionLess(ping.APIVersion, c.ClientVersion()) {
		return e.downgrade(ctx, "Maximum supported API version is "+ping.APIVersion)
	}
	return nil
}

func (e *engine) downgrade(ctx context.Context, msg string) error {
	opts := e.transportOpts()
	m := maxVersionRE.FindStringSubmatch(msg)
	if m != nil {
		opts = append(opts, client.WithVersion(m[1]))
	} else {
		opts = append(opts, client.WithAPIVersionNegotiation())
	}
	c, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return err
	}
	if m == nil {
		c.NegotiateAPIVersion(ctx)
	}
	_ = e.cli.Close()
	e.cli = c
	return nil
}

// transportOpts point the client at the host, over TLS when configured. The HTTP client must come before
// WithHost, which sets up the dialer on its transport.
func (e *engine) transportOpts() []client.Opt {
	var opts []client.Opt
	if e.tlsCfg != nil {
		opts = append(opts, client.WithHTTPClient(&http.Client{
			Transport:     &http.Transport{TLSClientConfig: e.tlsCfg},
			CheckRedirect: client.CheckRedirect,
		}))
	}
	return append(opts, client.WithHost(e.host))
}

func isVersionError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "is too new. Maximum supported API version is") ||
		strings.Contains(msg, "client version") && strings.Contains(msg, "too new")
}

// versionLess compares dotted API versions numerically ("1.9" < "1.41").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x = atoiSafe(as[i])
		}
		if i < len(bs) {
			y = atoiSafe(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

func atoiSafe(s string) int {
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			break
		}
		n = n*10 + int(r-'0')
	}
	return n
}

func (e *engine) close() {
	if e.cli != nil {
		_ = e.cli.Close()
	}
}
