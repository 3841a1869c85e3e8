package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/pkg/jsonmessage"
)

// RegistryBackend is what pull, push and login need.
type RegistryBackend interface {
	// Pull fetches ref ("name:tag" or "name@digest") for platform ("" = this machine's, or "os/arch").
	// allTags pulls every tag when ref names only a repository.
	Pull(ctx context.Context, ref string, auth *registry.AuthConfig, platform string, allTags bool, progress func(jsonmessage.JSONMessage)) error
	// Push sends ref to its registry; a name without a tag pushes every tag of that repository.
	Push(ctx context.Context, ref string, auth *registry.AuthConfig, progress func(jsonmessage.JSONMessage)) error
	// Login checks the credentials against the registry.
	Login(ctx context.Context, auth *registry.AuthConfig) (registry.AuthenticateOKBody, error)
}

// registryAuth decodes the X-Registry-Auth header the CLIs send (base64url JSON); absent is anonymous.
func registryAuth(r *http.Request) (*registry.AuthConfig, error) {
	h := r.Header.Get(registry.AuthHeader)
	if h == "" {
		return nil, nil
	}
	a, err := registry.DecodeAuthConfig(h)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	return a, nil
}

// imagePull serves POST /images/create?fromImage=name&tag=tag|digest.
func (s *Server) imagePull(w http.ResponseWriter, r *http.Request, from string) error {
	if s.registry == nil {
		return errNoBackend("registry")
	}
	q := r.URL.Query()
	ref := from
	if tag := q.Get("tag"); tag != "" {
		if strings.Contains(tag, ":") {
			ref += "@" + tag
		} else {
			ref += ":" + tag
		}
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	stream := newJSONStream(w)
	// An empty tag asks for every tag of the repository (docker pull -a).
	err = s.registry.Pull(r.Context(), ref, auth, q.Get("platform"), q.Get("tag") == "", stream.send)
	return stream.finish(err)
}

// imagePush serves POST /images/{name}/push?tag=.
func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, name string) error {
	if s.registry == nil {
		return errNoBackend("registry")
	}
	ref := name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	auth, err := registryAuth(r)
	if err != nil {
		return err
	}
	stream := newJSONStream(w)
	err = s.registry.Push(r.Context(), ref, auth, stream.send)
	return stream.finish(err)
}

// authLogin serves POST /auth.
func (s *Server) authLogin(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.registry == nil {
		return errNoBackend("registry")
	}
	var a registry.AuthConfig
	if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid login request: %w", err))
	}
	if a.Username == "" && a.IdentityToken == "" {
		return errdefs.InvalidParameter(errors.New("Username is required"))
	}
	resp, err := s.registry.Login(r.Context(), &a)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}
