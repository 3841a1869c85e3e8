package api

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	dockerapi "github.com/docker/docker/api"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/versions"
)

// The API versions served: what a client asks for in /v{X.Y}/ must lie between these.
const (
	APIVersion    = dockerapi.DefaultVersion         // "1.51"
	MinAPIVersion = dockerapi.MinSupportedAPIVersion // "1.24"
)

type versionKey struct{}

// requestVersion is the API version the client asked for, or ours for unversioned paths.
func requestVersion(ctx context.Context) string {
	if v, ok := ctx.Value(versionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

// withVersion strips a /v{X.Y} prefix, rejects versions outside what we serve, records the version in the
// request context, and sets the headers Docker sends on every response.
func (s *Server) withVersion(next http.Handler) http.Handler {
	server := "Berth/" + s.version.Version + " (linux)"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Server", server)
		h.Set("Api-Version", APIVersion)
		h.Set("Ostype", "linux")

		version := APIVersion
		if v, rest, ok := splitVersion(r.URL.Path); ok {
			switch {
			case versions.GreaterThan(v, APIVersion):
				s.writeError(w, r, errdefs.InvalidParameter(fmt.Errorf(
					"client version %s is too new. Maximum supported API version is %s", v, APIVersion)))
				return
			case versions.LessThan(v, MinAPIVersion):
				s.writeError(w, r, errdefs.InvalidParameter(fmt.Errorf(
					"client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version",
					v, MinAPIVersion)))
				return
			}
			version = v
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path, u.RawPath = rest, ""
			r2.URL = &u
			r = r2
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, version)))
	})
}

// splitVersion splits "/v1.51/containers/json" into "1.51" and "/containers/json".
func splitVersion(path string) (version, rest string, ok bool) {
	if !strings.HasPrefix(path, "/v") {
		return "", "", false
	}
	v, tail, found := strings.Cut(path[2:], "/")
	if !found {
		return "", "", false
	}
	major, minor, dot := strings.Cut(v, ".")
	if !dot || !isDigits(major) || !isDigits(minor) {
		return "", "", false
	}
	return v, "/" + tail, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// completeVersion fills what the server knows itself, so the daemon only has to give its own version.
func completeVersion(v types.Version) types.Version {
	if v.Version == "" {
		v.Version = "dev"
	}
	if v.APIVersion == "" {
		v.APIVersion = APIVersion
	}
	if v.MinAPIVersion == "" {
		v.MinAPIVersion = MinAPIVersion
	}
	if v.Os == "" {
		v.Os = runtime.GOOS
	}
	if v.Arch == "" {
		v.Arch = runtime.GOARCH
	}
	if v.GoVersion == "" {
		v.GoVersion = runtime.Version()
	}
	if v.Platform.Name == "" {
		v.Platform.Name = "Berth Engine"
	}
	if len(v.Components) == 0 {
		// docker version prints the server section from the components.
		details := map[string]string{
			"ApiVersion":    v.APIVersion,
			"MinAPIVersion": v.MinAPIVersion,
			"GitCommit":     v.GitCommit,
			"GoVersion":     v.GoVersion,
			"Os":            v.Os,
			"Arch":          v.Arch,
			"KernelVersion": v.KernelVersion,
			"BuildTime":     v.BuildTime,
			"Experimental":  strconv.FormatBool(v.Experimental),
		}
		v.Components = []types.ComponentVersion{{Name: "Engine", Version: v.Version, Details: details}}
	}
	return v
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request, _ string) error {
	h := w.Header()
	h.Set("Builder-Version", "1")
	h.Set("Docker-Experimental", "false")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *Server) getVersion(w http.ResponseWriter, r *http.Request, _ string) error {
	return writeJSON(w, http.StatusOK, s.version)
}

func (s *Server) getInfo(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.system == nil {
		return errNoBackend("system")
	}
	info, err := s.system.Info(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}
