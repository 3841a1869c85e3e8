package api

import (
	"context"
	"net/http"

	"github.com/docker/docker/api/types/backend"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// The /services and /tasks routes: thin wrappers over the SwarmBackend.

func (s *Server) serviceCreate(w http.ResponseWriter, r *http.Request, _ string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	var spec swarm.ServiceSpec
	if err := decodeBody(r, &spec); err != nil {
		return err
	}
	id, err := b.CreateService(r.Context(), spec)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, swarm.ServiceCreateResponse{ID: id, Warnings: []string{}})
}

func (s *Server) serviceList(w http.ResponseWriter, r *http.Request, _ string) error {
	status := queryBool(r, "status")
	return swarmList(s, w, r, func(b SwarmBackend, ctx context.Context, f filters.Args) ([]swarm.Service, error) {
		return b.Services(ctx, f, status)
	})
}

func (s *Server) serviceInspect(w http.ResponseWriter, r *http.Request, name string) error {
	return swarmGet(s, w, r, name, SwarmBackend.InspectService)
}

func (s *Server) serviceUpdate(w http.ResponseWriter, r *http.Request, name string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	version, err := queryVersion(r)
	if err != nil {
		return err
	}
	var spec swarm.ServiceSpec
	if err := decodeBody(r, &spec); err != nil {
		return err
	}
	if err := b.UpdateService(r.Context(), name, version, spec, r.URL.Query().Get("rollback")); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, swarm.ServiceUpdateResponse{Warnings: []string{}})
}

func (s *Server) serviceRemove(w http.ResponseWriter, r *http.Request, name string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	if err := b.RemoveService(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) serviceLogs(w http.ResponseWriter, r *http.Request, name string) error {
	return s.swarmLogs(w, r, backend.LogSelector{Services: []string{name}})
}

func (s *Server) taskLogs(w http.ResponseWriter, r *http.Request, name string) error {
	return s.swarmLogs(w, r, backend.LogSelector{Tasks: []string{name}})
}

// swarmLogs serves GET /services/{id}/logs and /tasks/{id}/logs. Errors (an unknown service or task) are
// answered before the header; once the stream has started, a failure is a message in it.
func (s *Server) swarmLogs(w http.ResponseWriter, r *http.Request, sel backend.LogSelector) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	opts := logsOptions(r)
	ctx, cancel := s.streamContext(r.Context())
	defer cancel()
	msgs, tty, err := b.ServiceLogs(ctx, sel, opts)
	if err != nil {
		return err
	}
	fw, err := startLogStream(w, r, tty)
	if err != nil {
		return nil // the client is gone
	}
	_ = writeLogMessages(fw, msgs, opts, !tty)
	return nil
}

func (s *Server) taskList(w http.ResponseWriter, r *http.Request, _ string) error {
	return swarmList(s, w, r, SwarmBackend.Tasks)
}

func (s *Server) taskInspect(w http.ResponseWriter, r *http.Request, name string) error {
	return swarmGet(s, w, r, name, SwarmBackend.InspectTask)
}
