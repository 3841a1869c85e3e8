package api

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"

	"github.com/docker/docker/api/types/backend"
	"github.com/docker/docker/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ExecBackend is what the exec routes need. The server finds it on the container backend.
type ExecBackend interface {
	// ExecCreate registers an exec in a running container (errdefs.Conflict "container X is not running"
	// otherwise) and returns its ID.
	ExecCreate(ctx context.Context, containerRef string, cfg container.ExecOptions) (string, error)
	// ExecStart starts an exec. Detached it returns a nil stream once the process runs. Otherwise the
	// server hijacks the connection, writes the upgrade response and calls stream, which runs the
	// process, copies its output to conn and conn's input to it, and returns when the output ends.
	ExecStart(ctx context.Context, id string, opts container.ExecStartOptions) (stream func(conn net.Conn) error, err error)
	// ExecInspect describes an exec (GET /exec/{id}/json).
	ExecInspect(ctx context.Context, id string) (*backend.ExecInspect, error)
	// ExecResize sets the size of a running exec's TTY.
	ExecResize(ctx context.Context, id string, height, width uint) error
}

func (s *Server) execBackend() (ExecBackend, error) {
	if eb, ok := s.containers.(ExecBackend); ok {
		return eb, nil
	}
	return nil, errNoBackend("exec")
}

// containerExecCreate serves POST /containers/{id}/exec.
func (s *Server) containerExecCreate(w http.ResponseWriter, r *http.Request, id string) error {
	eb, err := s.execBackend()
	if err != nil {
		return err
	}
	var cfg container.ExecOptions
	if err := decodeBody(r, &cfg); err != nil {
		return err
	}
	execID, err := eb.ExecCreate(r.Context(), id, cfg)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: execID})
}

// execStart serves POST /exec/{id}/start: hijacked like attach, unless detached.
func (s *Server) execStart(w http.ResponseWriter, r *http.Request, id string) error {
	eb, err := s.execBackend()
	if err != nil {
		return err
	}
	var opts container.ExecStartOptions
	if err := decodeBody(r, &opts); err != nil {
		return err
	}
	info, err := eb.ExecInspect(r.Context(), id)
	if err != nil {
		return err
	}
	tty := info.ProcessConfig != nil && info.ProcessConfig.Tty
	// As for attach: the session lives as long as the hijacked connection.
	ctx, cancel := s.streamContext(context.WithoutCancel(r.Context()))
	defer cancel()
	stream, err := eb.ExecStart(ctx, id, opts)
	if err != nil {
		return err
	}
	if stream == nil {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return s.runHijacked(w, r, tty, stream, "exec ended with an error", "exec", id)
}

// execInspect serves GET /exec/{id}/json.
func (s *Server) execInspect(w http.ResponseWriter, r *http.Request, id string) error {
	eb, err := s.execBackend()
	if err != nil {
		return err
	}
	info, err := eb.ExecInspect(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

// execResize serves POST /exec/{id}/resize?h=&w=.
func (s *Server) execResize(w http.ResponseWriter, r *http.Request, id string) error {
	eb, err := s.execBackend()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	height, err := strconv.ParseUint(q.Get("h"), 10, 16)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid resize height %q", q.Get("h")))
	}
	width, err := strconv.ParseUint(q.Get("w"), 10, 16)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid resize width %q", q.Get("w")))
	}
	if err := eb.ExecResize(r.Context(), id, uint(height), uint(width)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
