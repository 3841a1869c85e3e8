package registry

import (
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Config configures a registry server.
type Config struct {
	// Root is the storage directory; it is created if missing.
	Root string
	// ReadOnly refuses every write with 405 UNSUPPORTED.
	ReadOnly bool
	// Auth, when set, requires credentials for every request (see NewAuth).
	Auth *Auth
	// Log receives one line per failed request; nil discards.
	Log *slog.Logger
}

// maxManifestSize is the largest manifest accepted (the limit docker's registry and the spec suggest).
const maxManifestSize = 4 << 20

type server struct {
	cfg   Config
	store *store
	log   *slog.Logger
}

// New returns the registry's HTTP handler: /v2/... as in the distribution spec, and /token when
// token auth is configured.
func New(cfg Config) (http.Handler, error) {
	st, err := newStore(cfg.Root)
	if err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &server{cfg: cfg, store: st, log: log}, nil
}

// The spec's grammar for repository names and tags.
var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

// route is a parsed /v2/ path.
type route struct {
	kind string // "base", "catalog", "blob", "upload", "manifest", "tags", "referrers"
	name string // repository
	arg  string // digest, reference or upload id
}

// parseRoute splits a /v2/ path. Repository names may themselves contain "blobs" or "manifests"
// components, so the suffixes are matched from the end.
func parseRoute(p string) (route, bool) {
	if p == "/v2/" || p == "/v2" {
		return route{kind: "base"}, true
	}
	rest, ok := strings.CutPrefix(p, "/v2/")
	if !ok {
		return route{}, false
	}
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	if name, ok := strings.CutSuffix(rest, "/tags/list"); ok {
		return route{kind: "tags", name: name}, true
	}
	if name, ok := strings.CutSuffix(rest, "/blobs/uploads/"); ok {
		return route{kind: "upload", name: name}, true
	}
	best := route{}
	bestAt := -1
	for _, k := range []struct{ sep, kind string }{
		{"/blobs/uploads/", "upload"}, {"/blobs/", "blob"}, {"/manifests/", "manifest"}, {"/referrers/", "referrers"},
	} {
		i := strings.LastIndex(rest, k.sep)
		if i < 0 {
			continue
		}
		arg := rest[i+len(k.sep):]
		if arg == "" || strings.Contains(arg, "/") {
			continue
		}
		// A separator inside the name leaves a slash in arg and was skipped above; of the rest, the
		// earliest is the route ("/blobs/uploads/<id>" is not "/blobs/" with arg "uploads/<id>").
		if bestAt < 0 || i < bestAt {
			best, bestAt = route{kind: k.kind, name: rest[:i], arg: arg}, i
		}
	}
	return best, bestAt >= 0
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if s.cfg.Auth != nil && s.cfg.Auth.mode == authToken && r.URL.Path == tokenPath {
		s.cfg.Auth.serveToken(w, r)
		return
	}
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		writeError(w, r, errf(http.StatusNotFound, codeNameUnknown, "repository name not known to registry"))
		return
	}
	if rt.kind != "base" && rt.kind != "catalog" && !nameRE.MatchString(rt.name) {
		writeError(w, r, errf(http.StatusBadRequest, codeNameInvalid, "invalid repository name").with(map[string]string{"name": rt.name}))
		return
	}
	if s.cfg.Auth != nil {
		if !s.cfg.Auth.authorize(w, r, requiredScopes(rt, r)) {
			return
		}
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if write && s.cfg.ReadOnly && rt.kind != "base" {
		writeError(w, r, errf(http.StatusMethodNotAllowed, codeUnsupported, "the registry is in read-only mode"))
		return
	}
	var err error
	switch rt.kind {
	case "base":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			err = errMethod()
			break
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{}"))
	case "catalog":
		err = s.catalog(w, r)
	case "tags":
		err = s.tagsList(w, r, rt.name)
	case "blob":
		err = s.blob(w, r, rt.name, rt.arg)
	case "upload":
		err = s.uploadRoute(w, r, rt.name, rt.arg)
	case "manifest":
		err = s.manifest(w, r, rt.name, rt.arg)
	case "referrers":
		err = s.referrersList(w, r, rt.name, rt.arg)
	}
	if err != nil {
		var re *regError
		if !errors.As(err, &re) {
			s.log.Error("registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, r, err)
	}
}

func errMethod() *regError {
	return errf(http.StatusMethodNotAllowed, codeUnsupported, "the operation is unsupported")
}

// parseDigest parses a digest the client gave, in any algorithm the server can compute.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil || !d.Algorithm().Available() {
		return "", errf(http.StatusBadRequest, codeDigestInvalid, "invalid digest").with(map[string]string{"digest": s})
	}
	return d, nil
}
