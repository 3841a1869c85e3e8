package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// LifecycleBackend is what the pause, unpause, restart, top, stats and update routes need. The container
// backend provides it when it can; the routes answer 501 when it does not.
type LifecycleBackend interface {
	// Pause freezes a running container; Unpause thaws it.
	Pause(ctx context.Context, id string) error
	Unpause(ctx context.Context, id string) error
	// Restart stops the container with signal and timeout (as Stop does), then starts it.
	Restart(ctx context.Context, id, signal string, timeout *int) error
	// Top lists the container's processes as `ps psArgs` shows them.
	Top(ctx context.Context, id, psArgs string) (container.TopResponse, error)
	// Stats sends usage samples to emit: one, or one a second while stream until ctx ends. oneShot (for
	// a single sample) answers at once, without the previous sample CPU % needs.
	Stats(ctx context.Context, id string, stream, oneShot bool, emit func(*container.StatsResponse) error) error
	// Update changes resource limits and the restart policy, on a running container at once.
	Update(ctx context.Context, id string, u container.UpdateConfig) (container.UpdateResponse, error)
}

// EventOptions select the events a GET /events request receives.
type EventOptions struct {
	// Since and Until are the client's raw values: Unix seconds with an optional fraction, or "".
	Since, Until string
	Filters      filters.Args
}

// EventsBackend streams the daemon's events.
type EventsBackend interface {
	// Events checks opts and returns the function that streams: it sends matching events to emit, first
	// recorded ones in the window, then live ones, until ctx ends, Until passes or emit fails.
	Events(ctx context.Context, opts EventOptions) (stream func(emit func(events.Message) error) error, err error)
}

// lifecycleRoutes are the routes served from LifecycleBackend and EventsBackend.
func (s *Server) lifecycleRoutes() []route {
	return []route{
		named(http.MethodPost, "/containers/", "/pause", s.containerPause),
		named(http.MethodPost, "/containers/", "/unpause", s.containerUnpause),
		named(http.MethodPost, "/containers/", "/restart", s.containerRestart),
		named(http.MethodGet, "/containers/", "/top", s.containerTop),
		named(http.MethodGet, "/containers/", "/stats", s.containerStats),
		named(http.MethodPost, "/containers/", "/update", s.containerUpdate),
		fixed(http.MethodGet, "/events", s.getEvents),
	}
}

func (s *Server) lifecycle() (LifecycleBackend, error) {
	if lb, ok := s.containers.(LifecycleBackend); ok {
		return lb, nil
	}
	return nil, errNoBackend("container lifecycle")
}

// containerPause serves POST /containers/{id}/pause.
func (s *Server) containerPause(w http.ResponseWriter, r *http.Request, id string) error {
	lb, err := s.lifecycle()
	if err != nil {
		return err
	}
	if err := lb.Pause(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerUnpause serves POST /containers/{id}/unpause.
func (s *Server) containerUnpause(w http.ResponseWriter, r *http.Request, id string) error {
	lb, err := s.lifecycle()
	if err != nil {
		return err
	}
	if err := lb.Unpause(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerRestart serves POST /containers/{id}/restart?t=seconds&signal=s.
func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request, id string) error {
	lb, err := s.lifecycle()
	if err != nil {
		return err
	}
	var timeout *int
	t, ok, err := queryInt(r, "t")
	if err != nil {
		return err
	}
	if ok {
		timeout = &t
	}
	if err := lb.Restart(r.Context(), id, r.URL.Query().Get("signal"), timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerTop serves GET /containers/{id}/top?ps_args=-ef.
func (s *Server) containerTop(w http.ResponseWriter, r *http.Request, id string) error {
	lb, err := s.lifecycle()
	if err != nil {
		return err
	}
	resp, err := lb.Top(r.Context(), id, r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// containerStats serves GET /containers/{id}/stats?stream=&one-shot=. A stream sends one JSON object per
// line, each flushed as it comes; the header waits for the first sample so a missing container still
// gets its 404.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request, id string) error {
	lb, err := s.lifecycle()
	if err != nil {
		return err
	}
	stream := true
	if r.URL.Query().Has("stream") {
		stream = queryBool(r, "stream")
	}
	ctx, cancel := s.streamContext(r.Context())
	defer cancel()
	fw := newFlushWriter(w)
	enc := json.NewEncoder(fw)
	started := false
	return lb.Stats(ctx, id, stream, queryBool(r, "one-shot"), func(st *container.StatsResponse) error {
		if !started {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		return enc.Encode(st)
	})
}

// containerUpdate serves POST /containers/{id}/update with a container.UpdateConfig body.
func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request, id string) error {
	lb, err := s.lifecycle()
	if err != nil {
		return err
	}
	var u container.UpdateConfig
	if err := decodeBody(r, &u); err != nil {
		return err
	}
	resp, err := lb.Update(r.Context(), id, u)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// getEvents serves GET /events?since=&until=&filters=. The header goes out at once (clients wait for it
// before they print anything), then one JSON message per line, flushed as it comes.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.events == nil {
		return errNoBackend("events")
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := EventOptions{Since: q.Get("since"), Until: q.Get("until"), Filters: f}
	ctx, cancel := s.streamContext(r.Context())
	defer cancel()
	stream, err := s.events.Events(ctx, opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	if err := fw.rc.Flush(); err != nil {
		return err
	}
	enc := json.NewEncoder(fw)
	return stream(func(m events.Message) error { return enc.Encode(m) })
}
