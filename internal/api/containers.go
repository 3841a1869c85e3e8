package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/pkg/stdcopy"
)

// Content types of container output: multiplexed is stdcopy framing, raw is a TTY's byte stream.
const (
	mediaMultiplexed = "application/vnd.docker.multiplexed-stream"
	mediaRaw         = "application/vnd.docker.raw-stream"
)

// containerCreate serves POST /containers/create?name=n.
func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	var req container.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Config == nil {
		return errdefs.InvalidParameter(errors.New("config cannot be empty in order to create a container"))
	}
	resp, err := s.containers.Create(r.Context(), r.URL.Query().Get("name"), req.Config, req.HostConfig, req.NetworkingConfig)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return writeJSON(w, http.StatusCreated, resp)
}

// ContainerPruneBackend is the part of a ContainerBackend that serves POST /containers/prune.
type ContainerPruneBackend interface {
	// Prune removes stopped containers that the filters (until, label, label!) select.
	Prune(ctx context.Context, f filters.Args) (container.PruneReport, error)
}

// containerPrune serves POST /containers/prune?filters.
func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request, _ string) error {
	p, ok := s.containers.(ContainerPruneBackend)
	if !ok {
		return errNoBackend("container prune")
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	rep, err := p.Prune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// containerStart serves POST /containers/{id}/start; an already running container answers 304.
func (s *Server) containerStart(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	if err := s.containers.Start(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerStop serves POST /containers/{id}/stop?t=seconds&signal=s.
func (s *Server) containerStop(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	var timeout *int
	t, ok, err := queryInt(r, "t")
	if err != nil {
		return err
	}
	if ok {
		timeout = &t
	}
	if err := s.containers.Stop(r.Context(), id, r.URL.Query().Get("signal"), timeout); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerKill serves POST /containers/{id}/kill?signal=s.
func (s *Server) containerKill(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	if err := s.containers.Kill(r.Context(), id, r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerRemove serves DELETE /containers/{id}?force&v.
func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	if err := s.containers.Remove(r.Context(), id, queryBool(r, "force"), queryBool(r, "v")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerWait serves POST /containers/{id}/wait?condition=c. The header goes out before the wait ends:
// the CLI waits for it before it starts the container, so holding it back would deadlock `docker run`.
func (s *Server) containerWait(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "":
		cond = container.WaitConditionNotRunning
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return errdefs.InvalidParameter(fmt.Errorf("invalid condition: %q", cond))
	}
	ctx, cancel := s.streamContext(r.Context())
	defer cancel()
	results, err := s.containers.Wait(ctx, id, cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err := http.NewResponseController(w).Flush(); err != nil {
		return err
	}
	var resp container.WaitResponse
	select {
	case res, ok := <-results:
		if !ok {
			resp = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: "wait ended without an exit status"}}
		} else {
			resp = res
		}
	case <-ctx.Done():
		if r.Context().Err() != nil {
			return nil // the client went away; nobody is left to tell
		}
		resp = container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: "the daemon is shutting down"}}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// containerList serves GET /containers/json?all&limit&size&filters.
func (s *Server) containerList(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	limit, _, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	list, err := s.containers.List(r.Context(), queryBool(r, "all"), limit, queryBool(r, "size"), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

// containerInspect serves GET /containers/{id}/json.
func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	c, err := s.containers.Inspect(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

// containerRename serves POST /containers/{id}/rename?name=n.
func (s *Server) containerRename(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		return errdefs.InvalidParameter(errors.New("new name must be given to rename a container"))
	}
	if err := s.containers.Rename(r.Context(), id, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerResize serves POST /containers/{id}/resize?h=rows&w=columns.
func (s *Server) containerResize(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
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
	if err := s.containers.Resize(r.Context(), id, uint(height), uint(width)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// startLogStream sends a log stream's header at once (with follow, the first line may be long in
// coming, and the client waits for the header) and returns the writer for the lines.
func startLogStream(w http.ResponseWriter, r *http.Request, tty bool) (*flushWriter, error) {
	w.Header().Set("Content-Type", outputMediaType(r.Context(), tty))
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	return fw, fw.rc.Flush()
}

// containerLogs serves GET /containers/{id}/logs. The header is sent before the first line, because with
// follow there may be no line for a long time and the client waits for the header.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request, id string) error {
	if s.containers == nil {
		return errNoBackend("container")
	}
	opts := logsOptions(r)
	if !opts.ShowStdout && !opts.ShowStderr {
		return errdefs.InvalidParameter(errors.New("Bad parameters: you must choose at least one stream"))
	}
	tty, err := s.hasTTY(r.Context(), id)
	if err != nil {
		return err
	}
	fw, err := startLogStream(w, r, tty)
	if err != nil {
		return err
	}
	ctx, cancel := s.streamContext(r.Context())
	defer cancel()
	err = s.containers.Logs(ctx, id, opts, fw)
	if err != nil && ctx.Err() == nil && !tty {
		// Docker's way to report a failure inside a multiplexed stream; the SDK's StdCopy returns it.
		_, _ = stdcopy.NewStdWriter(fw, stdcopy.Systemerr).Write([]byte(err.Error()))
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// logsOptions reads the query of the logs routes.
func logsOptions(r *http.Request) container.LogsOptions {
	return container.LogsOptions{
		ShowStdout: queryBool(r, "stdout"),
		ShowStderr: queryBool(r, "stderr"),
		Since:      r.URL.Query().Get("since"),
		Until:      r.URL.Query().Get("until"),
		Timestamps: queryBool(r, "timestamps"),
		Follow:     queryBool(r, "follow"),
		Tail:       r.URL.Query().Get("tail"),
		Details:    queryBool(r, "details"),
	}
}

func (s *Server) hasTTY(ctx context.Context, id string) (bool, error) {
	c, err := s.containers.Inspect(ctx, id)
	if err != nil {
		return false, err
	}
	return c.Config != nil && c.Config.Tty, nil
}

// outputMediaType names the framing of container output; clients before 1.42 expect raw-stream always.
func outputMediaType(ctx context.Context, tty bool) string {
	if tty || versions.LessThan(requestVersion(ctx), "1.42") {
		return mediaRaw
	}
	return mediaMultiplexed
}
