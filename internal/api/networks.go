package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// NetworkBackend serves the /networks routes.
type NetworkBackend interface {
	NetworkList(ctx context.Context, f filters.Args) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, ref string) (network.Inspect, error)
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworkPrune(ctx context.Context, f filters.Args) (network.PruneReport, error)
	NetworkConnect(ctx context.Context, ref string, req network.ConnectOptions) error
	NetworkDisconnect(ctx context.Context, ref string, req network.DisconnectOptions) error
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.networks == nil {
		return errNoBackend("network")
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	list, err := s.networks.NetworkList(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []network.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request, name string) error {
	if s.networks == nil {
		return errNoBackend("network")
	}
	n, err := s.networks.NetworkInspect(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, n)
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.networks == nil {
		return errNoBackend("network")
	}
	var req network.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return errdefs.InvalidParameter(errors.New("network name cannot be empty"))
	}
	resp, err := s.networks.NetworkCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request, name string) error {
	if s.networks == nil {
		return errNoBackend("network")
	}
	if err := s.networks.NetworkRemove(r.Context(), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.networks == nil {
		return errNoBackend("network")
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	rep, err := s.networks.NetworkPrune(r.Context(), f)
	if err != nil {
		return err
	}
	if rep.NetworksDeleted == nil {
		rep.NetworksDeleted = []string{}
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request, name string) error {
	if s.networks == nil {
		return errNoBackend("network")
	}
	var req network.ConnectOptions
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := s.networks.NetworkConnect(r.Context(), name, req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request, name string) error {
	if s.networks == nil {
		return errNoBackend("network")
	}
	var req network.DisconnectOptions
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := s.networks.NetworkDisconnect(r.Context(), name, req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
