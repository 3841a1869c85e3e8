package distribution

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	"github.com/docker/docker/api/types/registry"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// endpoint is one registry host to talk to for a repository.
type endpoint struct {
	host     string // as in the reference: "docker.io", "127.0.0.1:5000"
	insecure bool   // plain HTTP allowed, and TLS certificates not verified
	mirror   bool
}

// endpoints lists where name can be fetched from: mirrors first for Docker Hub, as Docker does.
func (s *Service) endpoints(n reference.Named, forPush bool) []endpoint {
	host := reference.Domain(n)
	var out []endpoint
	if host == "docker.io" && !forPush {
		for _, m := range s.cfg.Mirrors {
			h := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(m, "https://"), "http://"), "/")
			out = append(out, endpoint{host: h, insecure: s.isInsecure(h) || strings.HasPrefix(m, "http://"), mirror: true})
		}
	}
	return append(out, endpoint{host: host, insecure: s.isInsecure(host)})
}

// isInsecure is Docker's rule: loopback addresses and the --insecure-registry list (host[:port] or
// CIDR) may use plain HTTP or unverified TLS.
func (s *Service) isInsecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	for _, e := range s.cfg.Insecure {
		if e == host || e == h {
			return true
		}
		if _, cidr, err := net.ParseCIDR(e); err == nil && ip != nil && cidr.Contains(ip) {
			return true
		}
	}
	return false
}

// baseTransport is the HTTP transport for one registry host: the host's CA and client certificate from
// <certs dir>/<host>/ (ca.crt, client.cert, client.key; Docker's certs.d layout), or no verification at
// all for an insecure registry.
func (s *Service) baseTransport(ep endpoint) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 8
	// Blobs are tens of megabytes: larger socket buffers mean far fewer syscalls per blob.
	tr.WriteBufferSize, tr.ReadBufferSize = 256<<10, 256<<10
	tr.ResponseHeaderTimeout = 60 * time.Second
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ep.insecure {
		cfg.InsecureSkipVerify = true
	}
	if s.cfg.CertsDir != "" {
		dir := filepath.Join(s.cfg.CertsDir, strings.ReplaceAll(ep.host, "/", "_"))
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			switch {
			case strings.HasSuffix(e.Name(), ".crt"):
				pem, err := os.ReadFile(p)
				if err != nil {
					return nil, errdefs.System(err)
				}
				if cfg.RootCAs == nil {
					if cfg.RootCAs, err = x509.SystemCertPool(); err != nil || cfg.RootCAs == nil {
						cfg.RootCAs = x509.NewCertPool()
					}
				}
				if !cfg.RootCAs.AppendCertsFromPEM(pem) {
					return nil, errdefs.InvalidParameter(fmt.Errorf("no certificate found in %s", p))
				}
			case strings.HasSuffix(e.Name(), ".cert"):
				key := strings.TrimSuffix(p, ".cert") + ".key"
				pair, err := tls.LoadX509KeyPair(p, key)
				if err != nil {
					return nil, errdefs.InvalidParameter(fmt.Errorf("client certificate %s: %w", p, err))
				}
				cfg.Certificates = append(cfg.Certificates, pair)
			}
		}
	}
	tr.TLSClientConfig = cfg
	return tr, nil
}

// repo is an authenticated client for one repository on one endpoint.
type repo struct {
	ep     endpoint
	path   string // repository path on the registry: "library/busybox"
	base   string // "https://host/v2/<path>"; the transport switches to http when the ping said so
	client *http.Client
}

// registryFor names ep's registry for go-containerregistry (Docker Hub's API host for "docker.io") and
// gives the HTTP transport to reach it.
func (s *Service) registryFor(ep endpoint) (name.Registry, *http.Transport, error) {
	host := ep.host
	if host == "docker.io" {
		host = "index.docker.io"
	}
	opts := []name.Option{name.WeakValidation}
	if ep.insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return reg, nil, errdefs.InvalidParameter(err)
	}
	base, err := s.baseTransport(ep)
	return reg, base, err
}

// open pings the registry, does whatever auth it asks for and returns a client scoped to path.
func (s *Service) open(ctx context.Context, ep endpoint, path string, auth *registry.AuthConfig, push bool, extraScopes ...string) (*repo, error) {
	reg, base, err := s.registryFor(ep)
	if err != nil {
		return nil, err
	}
	action := transport.PullScope
	if push {
		action = transport.PushScope
	}
	// The scope string is built here: name.Repository would refuse one-letter repositories, which
	// Docker allows.
	scopes := append([]string{"repository:" + path + ":" + action}, extraScopes...)
	rt, err := transport.NewWithContext(ctx, reg, authenticator(auth), base, scopes)
	if err != nil {
		return nil, pingError(reg.RegistryStr(), err)
	}
	return &repo{ep: ep, path: path, base: "https://" + reg.RegistryStr() + "/v2/" + path, client: &http.Client{Transport: rt}}, nil
}

func authenticator(a *registry.AuthConfig) authn.Authenticator {
	if a == nil || (a.Username == "" && a.Password == "" && a.IdentityToken == "" && a.RegistryToken == "" && a.Auth == "") {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken})
}

// pingError turns a failed ping or token fetch into what a user can act on.
func pingError(host string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && terr.StatusCode == http.StatusUnauthorized {
		return errdefs.Unauthorized(fmt.Errorf("Get \"https://%s/v2/\": unauthorized: incorrect username or password", host))
	}
	var nerr net.Error
	if errors.As(err, &nerr) || errors.Is(err, io.EOF) {
		return errdefs.Unavailable(err)
	}
	return errdefs.System(err)
}

// registryError reads a failed response into an error of the right kind.
func registryError(resp *http.Response, what string) error {
	err := transport.CheckError(resp)
	var terr *transport.Error
	msg := err.Error()
	if errors.As(err, &terr) && len(terr.Errors) > 0 {
		parts := make([]string, 0, len(terr.Errors))
		for _, d := range terr.Errors {
			// Docker's wording: "manifest unknown: manifest unknown".
			parts = append(parts, strings.ReplaceAll(strings.ToLower(string(d.Code)), "_", " ")+": "+d.Message)
		}
		msg = strings.Join(parts, "; ")
	}
	if (terr == nil || len(terr.Errors) == 0) && resp.StatusCode == http.StatusUnauthorized {
		msg = "unauthorized: authentication required"
	}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return errdefs.NotFound(errors.New(msg))
	case http.StatusUnauthorized, http.StatusForbidden:
		return errdefs.Unauthorized(errors.New(msg))
	case http.StatusBadRequest:
		return errdefs.InvalidParameter(errors.New(msg))
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return transient(errdefs.Unavailable(errors.New(msg)))
	}
	return errdefs.System(fmt.Errorf("%s: %s", what, msg))
}

func (r *repo) do(ctx context.Context, method, url string, body io.Reader, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, transient(errdefs.Unavailable(err))
	}
	return resp, nil
}
