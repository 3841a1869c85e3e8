package api

import (
	"context"
	"net/http"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/api/types/volume"
)

// VolumeBackend is what the volume routes need. Errors carry errdefs kinds ("get x: no such volume",
// "remove x: volume is in use - [id]").
type VolumeBackend interface {
	// Create makes a volume, or returns the existing one of that name.
	Create(ctx context.Context, o volume.CreateOptions) (volume.Volume, error)
	// List returns the volumes matching f (dangling, driver, label, name).
	List(ctx context.Context, f filters.Args) (volume.ListResponse, error)
	// Inspect describes one volume.
	Inspect(ctx context.Context, name string) (volume.Volume, error)
	// Remove deletes an unused volume; force makes a missing one not an error.
	Remove(ctx context.Context, name string, force bool) error
	// Prune deletes unused volumes matching f (label, label!, all).
	Prune(ctx context.Context, f filters.Args) (volume.PruneReport, error)
}

// volumeRoutes are the routes served from VolumeBackend.
func (s *Server) volumeRoutes() []route {
	return []route{
		fixed(http.MethodGet, "/volumes", s.volumeList),
		fixed(http.MethodPost, "/volumes/create", s.volumeCreate),
		fixed(http.MethodPost, "/volumes/prune", s.volumePrune),
		named(http.MethodGet, "/volumes/", "", s.volumeInspect),
		named(http.MethodDelete, "/volumes/", "", s.volumeRemove),
	}
}

// volumeList serves GET /volumes?filters.
func (s *Server) volumeList(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.volumes == nil {
		return errNoBackend("volume")
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	resp, err := s.volumes.List(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// volumeCreate serves POST /volumes/create with a volume.CreateOptions body.
func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.volumes == nil {
		return errNoBackend("volume")
	}
	var o volume.CreateOptions
	if err := decodeBody(r, &o); err != nil {
		return err
	}
	v, err := s.volumes.Create(r.Context(), o)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

// volumeInspect serves GET /volumes/{name}.
func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request, name string) error {
	if s.volumes == nil {
		return errNoBackend("volume")
	}
	v, err := s.volumes.Inspect(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

// volumeRemove serves DELETE /volumes/{name}?force.
func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request, name string) error {
	if s.volumes == nil {
		return errNoBackend("volume")
	}
	if err := s.volumes.Remove(r.Context(), name, queryBool(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// volumePrune serves POST /volumes/prune?filters. Clients older than API 1.42 expect every unused
// volume to go, not only anonymous ones, so they get all=true.
func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.volumes == nil {
		return errNoBackend("volume")
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	if versions.LessThan(requestVersion(r.Context()), "1.42") && !f.Contains("all") {
		f.Add("all", "true")
	}
	rep, err := s.volumes.Prune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}
