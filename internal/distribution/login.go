package distribution

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Login checks auth against its server (Docker Hub when none is given). Nothing is stored: the CLIs
// keep credentials in their own config file and send them with each pull and push.
func (s *Service) Login(ctx context.Context, auth *registry.AuthConfig) (registry.AuthenticateOKBody, error) {
	host := normalizeServer(auth.ServerAddress)
	reg, base, err := s.registryFor(endpoint{host: host, insecure: s.isInsecure(host)})
	if err != nil {
		return registry.AuthenticateOKBody{}, err
	}
	rt, err := transport.NewWithContext(ctx, reg, authenticator(auth), base, nil)
	if err != nil {
		return registry.AuthenticateOKBody{}, pingError(reg.RegistryStr(), err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return registry.AuthenticateOKBody{}, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return registry.AuthenticateOKBody{}, errdefs.Unavailable(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return registry.AuthenticateOKBody{}, errdefs.Unauthorized(fmt.Errorf("login attempt to %s://%s/v2/ failed with status: %d %s",
			resp.Request.URL.Scheme, reg.RegistryStr(), resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	if resp.StatusCode != http.StatusOK {
		return registry.AuthenticateOKBody{}, errdefs.System(fmt.Errorf("login to %s: unexpected status %s", reg.RegistryStr(), resp.Status))
	}
	return registry.AuthenticateOKBody{Status: "Login Succeeded"}, nil
}

// normalizeServer turns what users type for a registry ("https://host:5000/", Docker Hub's index
// URL) into the host form references use.
func normalizeServer(s string) string {
	for _, p := range []string{"https://", "http://"} {
		if len(s) > len(p) && s[:len(p)] == p {
			s = s[len(p):]
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			s = s[:i]
			break
		}
	}
	switch s {
	case "", "index.docker.io", "registry-1.docker.io", "docker.io":
		return "docker.io"
	}
	return s
}
