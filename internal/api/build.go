package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/docker/docker/api/types/registry"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/ctxsync"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/jsonmessage"
)

// BuildOptions are POST /build's query parameters.
type BuildOptions struct {
	Tags        []string
	Dockerfile  string
	BuildArgs   map[string]*string
	NoCache     bool
	Target      string
	Labels      map[string]string
	CacheFrom   []string
	NetworkMode string
	Quiet       bool
	// Remote is a git repository URL to build from instead of the body.
	Remote string
	// SyncSession is the X-Berth-Context header: the body is then the tar of the paths that context
	// sync asked for (see package ctxsync).
	SyncSession string
	// PullParent is --pull; Auths is X-Registry-Config, the client's credentials by registry.
	PullParent bool
	Auths      map[string]registry.AuthConfig
	// Limits for RUN containers.
	Memory, MemorySwap, CPUShares, CPUPeriod, CPUQuota int64
	CpusetCpus                                         string
	// ShmSize, Ulimits and ExtraHosts (--shm-size, --ulimit, --add-host) apply to RUN containers.
	ShmSize    int64
	Ulimits    []*container.Ulimit
	ExtraHosts []string
}

// BuildBackend builds images (Docker's legacy builder API).
type BuildBackend interface {
	// Build reads the context tar (or a bare Dockerfile) from src, writes user-facing text to out as the
	// build goes, and returns the image ID. A failed RUN's error implements ExitCode() int.
	Build(ctx context.Context, src io.Reader, opts BuildOptions, out io.Writer) (string, error)
	// PruneCache removes build cache entries and the step images only they kept.
	PruneCache(ctx context.Context, o BuildPruneOptions) (BuildPruneReport, error)
}

// ContextSyncBackend serves Berth's build context sync (POST /berth/build/context/{id}/sync); a
// BuildBackend without it answers 404 there, as Docker does, and berth falls back to the tar upload.
type ContextSyncBackend interface {
	// SyncContext compares the manifest with the tree kept for the context id and says what to send.
	SyncContext(ctx context.Context, id string, m ctxsync.Manifest) (ctxsync.Answer, error)
}

// maxManifest bounds a context manifest read into memory (about a million paths).
const maxManifest = 256 << 20

// BuildPruneOptions are POST /build/prune's parameters.
type BuildPruneOptions struct {
	All         bool
	KeepStorage int64 // keep-storage (or reserved-space, its successor); 0 = no limit
	Filters     filters.Args
}

// BuildPruneReport is what POST /build/prune removed.
type BuildPruneReport struct {
	CachesDeleted  []string
	SpaceReclaimed uint64
}

// buildRoutes are the routes served from BuildBackend.
func (s *Server) buildRoutes() []route {
	return []route{
		fixed(http.MethodPost, "/build", s.build),
		fixed(http.MethodPost, "/build/prune", s.buildPrune),
		named(http.MethodPost, "/berth/build/context/", "/sync", s.syncContext),
	}
}

// syncContext serves POST /berth/build/context/{id}/sync: a ctxsync.Manifest in, a ctxsync.Answer out.
func (s *Server) syncContext(w http.ResponseWriter, r *http.Request, id string) error {
	sb, ok := s.builder.(ContextSyncBackend)
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody{Message: "page not found"})
		return nil
	}
	var m ctxsync.Manifest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxManifest))
	if err := dec.Decode(&m); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid context manifest: %w", err))
	}
	ans, err := sb.SyncContext(r.Context(), id, m)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ans)
}

// buildPrune serves POST /build/prune?all&keep-storage&filters.
func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.builder == nil {
		return errNoBackend("build")
	}
	o := BuildPruneOptions{All: queryBool(r, "all")}
	for _, key := range []string{"keep-storage", "reserved-space"} {
		if v := r.URL.Query().Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errdefs.InvalidParameter(fmt.Errorf("invalid %s: %q", key, v))
			}
			o.KeepStorage = n
		}
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	o.Filters = f
	rep, err := s.builder.PruneCache(r.Context(), o)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, build.CachePruneReport{CachesDeleted: rep.CachesDeleted, SpaceReclaimed: rep.SpaceReclaimed})
}

func (s *Server) build(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.builder == nil {
		return errNoBackend("build")
	}
	q := r.URL.Query()
	if q.Get("version") == "2" {
		return errdefs.NotImplemented(errors.New("BuildKit is not supported by this daemon; use the legacy builder (DOCKER_BUILDKIT=0)"))
	}
	opts := BuildOptions{
		Tags: q["t"], Dockerfile: q.Get("dockerfile"), NoCache: queryBool(r, "nocache"), Target: q.Get("target"),
		NetworkMode: q.Get("networkmode"), Quiet: queryBool(r, "q"), Remote: q.Get("remote"),
	}
	opts.ExtraHosts = q["extrahosts"]
	if v := q.Get("shmsize"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return errdefs.InvalidParameter(fmt.Errorf("invalid shmsize: %q", v))
		}
		opts.ShmSize = n
	}
	for key, dst := range map[string]any{"buildargs": &opts.BuildArgs, "labels": &opts.Labels, "cachefrom": &opts.CacheFrom, "ulimits": &opts.Ulimits} {
		if v := q.Get(key); v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return errdefs.InvalidParameter(fmt.Errorf("invalid %s: %w", key, err))
			}
		}
	}
	opts.CpusetCpus = q.Get("cpusetcpus")
	opts.SyncSession = r.Header.Get(ctxsync.Header)
	opts.PullParent = queryBool(r, "pull")
	if h := r.Header.Get("X-Registry-Config"); h != "" {
		b, err := base64.URLEncoding.DecodeString(h)
		if err != nil {
			b, err = base64.StdEncoding.DecodeString(h)
		}
		if err != nil || json.Unmarshal(b, &opts.Auths) != nil {
			return errdefs.InvalidParameter(errors.New("invalid X-Registry-Config header"))
		}
	}
	for key, dst := range map[string]*int64{"memory": &opts.Memory, "memswap": &opts.MemorySwap, "cpushares": &opts.CPUShares, "cpuperiod": &opts.CPUPeriod, "cpuquota": &opts.CPUQuota} {
		if v := q.Get(key); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errdefs.InvalidParameter(fmt.Errorf("invalid %s: %q", key, v))
			}
			*dst = n
		}
	}
	if opts.NetworkMode == "default" {
		opts.NetworkMode = ""
	}
	stream := newJSONStream(w)
	out := &streamWriter{stream: stream}
	// The stream starts at once: a build is long and the client shows its steps as they come.
	stream.start()
	id, err := s.builder.Build(r.Context(), r.Body, opts, out)
	if err != nil {
		var coded interface{ ExitCode() int }
		msg := &jsonmessage.JSONError{Message: err.Error()}
		if errors.As(err, &coded) {
			msg.Code = coded.ExitCode()
		}
		stream.send(jsonmessage.JSONMessage{Error: msg, ErrorMessage: err.Error()}) //nolint:staticcheck // older clients read only "error"
		return nil
	}
	aux, _ := json.Marshal(build.Result{ID: id})
	raw := json.RawMessage(aux)
	stream.send(jsonmessage.JSONMessage{Aux: &raw})
	if opts.Quiet {
		stream.streamLine(id)
	}
	return nil
}

// streamWriter turns the build's text into {"stream": ...} messages.
type streamWriter struct {
	mu     sync.Mutex
	stream *jsonStream
}

func (sw *streamWriter) Write(p []byte) (int, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if len(p) > 0 {
		sw.stream.send(jsonmessage.JSONMessage{Stream: strings.ToValidUTF8(string(p), "\uFFFD")})
	}
	return len(p), sw.stream.err
}
