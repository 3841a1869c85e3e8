package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/backend"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// SwarmBackend serves the /swarm and /nodes routes (swarm mode). Errors carry errdefs kinds and Docker's
// wording ("This node is not a swarm manager...").
type SwarmBackend interface {
	Init(ctx context.Context, req swarm.InitRequest) (nodeID string, err error)
	Join(ctx context.Context, req swarm.JoinRequest) error
	Leave(ctx context.Context, force bool) error
	Inspect(ctx context.Context) (swarm.Swarm, error)
	Update(ctx context.Context, version uint64, spec swarm.Spec, flags swarm.UpdateFlags) error
	Nodes(ctx context.Context, f filters.Args) ([]swarm.Node, error)
	Node(ctx context.Context, ref string) (swarm.Node, error)
	UpdateNode(ctx context.Context, ref string, version uint64, spec swarm.NodeSpec) error
	RemoveNode(ctx context.Context, ref string, force bool) error

	// Services and tasks (services.go).
	CreateService(ctx context.Context, spec swarm.ServiceSpec) (string, error)
	Services(ctx context.Context, f filters.Args, status bool) ([]swarm.Service, error)
	InspectService(ctx context.Context, ref string) (swarm.Service, error)
	UpdateService(ctx context.Context, ref string, version uint64, spec swarm.ServiceSpec, rollback string) error
	RemoveService(ctx context.Context, ref string) error
	Tasks(ctx context.Context, f filters.Args) ([]swarm.Task, error)
	InspectTask(ctx context.Context, ref string) (swarm.Task, error)
	// ServiceLogs streams the logs of the selected services' and tasks' containers; the channel closes
	// when the stream ends or ctx does. tty reports that they are one raw stream.
	ServiceLogs(ctx context.Context, sel backend.LogSelector, opts container.LogsOptions) (msgs <-chan *backend.LogMessage, tty bool, err error)
}

func (s *Server) swarmRoutes() []route {
	return []route{
		fixed(http.MethodGet, "/swarm", s.swarmInspect),
		fixed(http.MethodPost, "/swarm/init", s.swarmInit),
		fixed(http.MethodPost, "/swarm/join", s.swarmJoin),
		fixed(http.MethodPost, "/swarm/leave", s.swarmLeave),
		fixed(http.MethodPost, "/swarm/update", s.swarmUpdate),
		fixed(http.MethodGet, "/swarm/unlockkey", s.swarmUnlock),
		fixed(http.MethodPost, "/swarm/unlock", s.swarmUnlock),
		fixed(http.MethodGet, "/nodes", s.nodeList),
		named(http.MethodGet, "/nodes/", "", s.nodeInspect),
		named(http.MethodDelete, "/nodes/", "", s.nodeRemove),
		named(http.MethodPost, "/nodes/", "/update", s.nodeUpdate),
		fixed(http.MethodGet, "/services", s.serviceList),
		fixed(http.MethodPost, "/services/create", s.serviceCreate),
		named(http.MethodGet, "/services/", "", s.serviceInspect),
		named(http.MethodDelete, "/services/", "", s.serviceRemove),
		named(http.MethodPost, "/services/", "/update", s.serviceUpdate),
		named(http.MethodGet, "/services/", "/logs", s.serviceLogs),
		fixed(http.MethodGet, "/tasks", s.taskList),
		named(http.MethodGet, "/tasks/", "", s.taskInspect),
		named(http.MethodGet, "/tasks/", "/logs", s.taskLogs),
	}
}

func (s *Server) swarmBackend() (SwarmBackend, error) {
	if s.swarm == nil {
		return nil, errNoBackend("swarm")
	}
	return s.swarm, nil
}

// swarmList answers a list route: the request's filters go to the backend, its list comes back as JSON.
func swarmList[T any](s *Server, w http.ResponseWriter, r *http.Request, list func(SwarmBackend, context.Context, filters.Args) (T, error)) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	out, err := list(b, r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

// swarmGet answers an inspect route: the object the path names, as JSON.
func swarmGet[T any](s *Server, w http.ResponseWriter, r *http.Request, name string, get func(SwarmBackend, context.Context, string) (T, error)) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	out, err := get(b, r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) swarmInspect(w http.ResponseWriter, r *http.Request, _ string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	sw, err := b.Inspect(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sw)
}

func (s *Server) swarmInit(w http.ResponseWriter, r *http.Request, _ string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	var req swarm.InitRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	id, err := b.Init(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, id)
}

func (s *Server) swarmJoin(w http.ResponseWriter, r *http.Request, _ string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	var req swarm.JoinRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if err := b.Join(r.Context(), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) swarmLeave(w http.ResponseWriter, r *http.Request, _ string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	if err := b.Leave(r.Context(), queryBool(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) swarmUpdate(w http.ResponseWriter, r *http.Request, _ string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	version, err := queryVersion(r)
	if err != nil {
		return err
	}
	var spec swarm.Spec
	if err := decodeBody(r, &spec); err != nil {
		return err
	}
	flags := swarm.UpdateFlags{
		RotateWorkerToken:      queryBool(r, "rotateWorkerToken"),
		RotateManagerToken:     queryBool(r, "rotateManagerToken"),
		RotateManagerUnlockKey: queryBool(r, "rotateManagerUnlockKey"),
	}
	if err := b.Update(r.Context(), version, spec, flags); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) swarmUnlock(http.ResponseWriter, *http.Request, string) error {
	return errdefs.NotImplemented(errors.New("swarm autolock is not supported by Berth yet"))
}

func (s *Server) nodeList(w http.ResponseWriter, r *http.Request, _ string) error {
	return swarmList(s, w, r, SwarmBackend.Nodes)
}

func (s *Server) nodeInspect(w http.ResponseWriter, r *http.Request, name string) error {
	return swarmGet(s, w, r, name, SwarmBackend.Node)
}

func (s *Server) nodeRemove(w http.ResponseWriter, r *http.Request, name string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	if err := b.RemoveNode(r.Context(), name, queryBool(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) nodeUpdate(w http.ResponseWriter, r *http.Request, name string) error {
	b, err := s.swarmBackend()
	if err != nil {
		return err
	}
	version, err := queryVersion(r)
	if err != nil {
		return err
	}
	var spec swarm.NodeSpec
	if err := decodeBody(r, &spec); err != nil {
		return err
	}
	if err := b.UpdateNode(r.Context(), name, version, spec); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// queryVersion reads the required ?version= of an update (the object version the client read).
func queryVersion(r *http.Request) (uint64, error) {
	v := r.URL.Query().Get("version")
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, errdefs.InvalidParameter(errors.New("invalid version: " + strconv.Quote(v)))
	}
	return n, nil
}
