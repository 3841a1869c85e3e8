// Package api serves the Docker Engine API (version 1.51, down to 1.24) over HTTP, so that the stock docker
// CLI and the Docker Go SDK work against Berth.
//
// The package is a thin translation layer: each handler decodes a request, calls one backend method, and
// encodes the answer with the wire types of github.com/docker/docker/api/types. Backends say what went wrong
// with errdefs kinds; errdefs.HTTPStatus turns a kind into a status code in one place, and the body is
// Docker's {"message": "..."}.
//
// Streams: import and load answer with Docker's JSON message stream; the status line is sent with the first
// message, so an error before any output still gets its proper status code. Logs and wait send their header
// at once (clients block on it). Attach hijacks the connection and hands it to the backend.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/docker/docker/api/types"
)

// Config is what the daemon hands to the server. A nil backend makes its routes answer 501.
type Config struct {
	Images     ImageBackend
	Containers ContainerBackend
	Networks   NetworkBackend
	System     SystemBackend
	// Volumes serves the /volumes routes (volumes.go).
	Volumes VolumeBackend
	// Events serves GET /events (lifecycle.go); the lifecycle routes use Containers when it implements
	// LifecycleBackend.
	Events EventsBackend
	// Builder serves POST /build.
	Builder BuildBackend
	// Registry serves pull, push and POST /auth.
	Registry RegistryBackend
	// Swarm serves the /swarm and /nodes routes (swarm.go).
	Swarm SwarmBackend
	// Version is served by GET /version; empty API, OS, arch and Go fields are filled in.
	Version types.Version
	// Logger receives one debug line per request and every internal (500) error; nil discards.
	Logger *slog.Logger
}

// Server serves the Engine API on any number of listeners.
type Server struct {
	images     ImageBackend
	containers ContainerBackend
	networks   NetworkBackend
	system     SystemBackend
	volumes    VolumeBackend
	events     EventsBackend
	builder    BuildBackend
	registry   RegistryBackend
	swarm      SwarmBackend
	version    types.Version
	log        *slog.Logger
	routes     []route
	http       *http.Server

	// stop is closed by Shutdown. Endless streams (wait, logs --follow, attach) end on it, because
	// http.Server.Shutdown would otherwise wait for them until its context expires.
	stop     chan struct{}
	stopOnce sync.Once

	mu       sync.Mutex
	hijacked map[net.Conn]struct{} // http.Server forgets hijacked connections; Shutdown closes these
}

// New returns a server for cfg. It listens on nothing until Serve.
func New(cfg Config) *Server {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		images:     cfg.Images,
		registry:   cfg.Registry,
		containers: cfg.Containers,
		networks:   cfg.Networks,
		system:     cfg.System,
		volumes:    cfg.Volumes,
		events:     cfg.Events,
		builder:    cfg.Builder,
		swarm:      cfg.Swarm,
		version:    completeVersion(cfg.Version),
		log:        log,
		stop:       make(chan struct{}),
		hijacked:   make(map[net.Conn]struct{}),
	}
	s.routes = append(append(append(s.routeTable(), s.lifecycleRoutes()...), s.filesystemRoutes()...), s.buildRoutes()...)
	s.routes = append(s.routes, s.volumeRoutes()...)
	s.routes = append(s.routes, s.swarmRoutes()...)
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// Handler returns the API as an http.Handler, for callers that run their own http.Server (tests, TLS).
func (s *Server) Handler() http.Handler {
	return s.withLogging(s.withVersion(http.HandlerFunc(s.dispatch)))
}

// Serve accepts connections on l until Shutdown; it may be called for several listeners at once. It returns
// nil after Shutdown, and the listener's error otherwise.
func (s *Server) Serve(l net.Listener) error {
	err := s.http.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, ends streams and attached sessions, and waits for other requests in
// flight until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	for c := range s.hijacked {
		c.Close()
	}
	s.mu.Unlock()
	return s.http.Shutdown(ctx)
}

// streamContext returns a context for an endless stream: it ends with the request or at Shutdown.
func (s *Server) streamContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (s *Server) trackHijacked(c net.Conn) (untrack func()) {
	s.mu.Lock()
	s.hijacked[c] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.hijacked, c)
		s.mu.Unlock()
	}
}
