package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/orchestrator"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// The service routes: a service is stored as it is written; the leader's orchestration loop
// (orchestrate.go) turns it into tasks.

var (
	serviceFilters = map[string]bool{"id": true, "name": true, "label": true, "mode": true}
	// _up-to-date (tasks of the service's current template) is what the docker CLI's progress display asks for.
	taskFilters = map[string]bool{"id": true, "name": true, "service": true, "node": true, "desired-state": true, "label": true, "_up-to-date": true}
)

// errNameConflict is Docker's answer to a service name already taken.
var errNameConflict = errdefs.Conflict(errors.New("rpc error: code = AlreadyExists desc = name conflicts with an existing object"))

// CreateService stores a new service and returns its ID.
func (s *Service) CreateService(ctx context.Context, spec swarm.ServiceSpec) (string, error) {
	m, _, err := s.managerView()
	if err != nil {
		return "", err
	}
	if spec.Name == "" {
		spec.Name = serviceName()
	}
	if err := orchestrator.ValidateSpec(&spec); err != nil {
		return "", errdefs.InvalidParameter(err)
	}
	if err := m.resolveServiceNetworks(&spec); err != nil {
		return "", err
	}
	if err := m.checkPublishedPorts("", spec); err != nil {
		return "", err
	}
	if _, _, err := m.resolveService(spec.Name); err == nil {
		return "", errNameConflict
	}
	id := newID()
	sv := swarm.Service{ID: id, Spec: spec, Endpoint: endpoint(spec, swarm.Endpoint{}, nil)}
	if err := s.apply(ctx, m, store.Change{Op: store.OpCreate, Kind: kindService, ID: id, Data: encodeService(sv)}); err != nil {
		return "", err
	}
	return id, nil
}

// endpoint is a service's endpoint as its spec asks for it. The virtual IPs and the published ports the
// leader picked (for ports the previous spec, oldSpec, left to it) stay; the leader drops VIPs of
// networks the service left. A new service has none yet.
func endpoint(spec swarm.ServiceSpec, old swarm.Endpoint, oldSpec *swarm.ServiceSpec) swarm.Endpoint {
	ep := swarm.Endpoint{VirtualIPs: old.VirtualIPs}
	if spec.EndpointSpec == nil {
		return ep
	}
	ep.Spec = *spec.EndpointSpec
	key := func(p swarm.PortConfig) string {
		proto := p.Protocol
		if proto == "" {
			proto = swarm.PortConfigProtocolTCP
		}
		return fmt.Sprintf("%s/%d", proto, p.TargetPort)
	}
	left := map[string]bool{} // ports the old spec left to the leader
	if oldSpec != nil && oldSpec.EndpointSpec != nil {
		for _, p := range oldSpec.EndpointSpec.Ports {
			if p.PublishedPort == 0 && p.PublishMode != swarm.PortConfigPublishModeHost {
				left[key(p)] = true
			}
		}
	}
	picked := map[string]uint32{}
	for _, p := range old.Ports {
		if p.PublishMode == swarm.PortConfigPublishModeIngress && p.PublishedPort != 0 && left[key(p)] {
			picked[key(p)] = p.PublishedPort
		}
	}
	for _, p := range spec.EndpointSpec.Ports {
		if p.Protocol == "" {
			p.Protocol = swarm.PortConfigProtocolTCP
		}
		if p.PublishMode == "" {
			p.PublishMode = swarm.PortConfigPublishModeIngress
		}
		if p.PublishedPort == 0 && p.PublishMode == swarm.PortConfigPublishModeIngress {
			p.PublishedPort = picked[key(p)]
			delete(picked, key(p)) // one picked port for one spec port
		}
		ep.Ports = append(ep.Ports, p)
	}
	return ep
}

// Services lists the services matching f; status adds the running and desired task counts.
func (s *Service) Services(ctx context.Context, f filters.Args, status bool) ([]swarm.Service, error) {
	m, _, err := s.managerView()
	if err != nil {
		return nil, err
	}
	if err := f.Validate(serviceFilters); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	for _, mode := range f.Get("mode") {
		if mode != "replicated" && mode != "global" {
			return nil, errdefs.InvalidParameter(fmt.Errorf("Invalid filter: 'mode'='%s'", mode))
		}
	}
	out := []swarm.Service{}
	for _, o := range m.store.List(kindService) {
		sv := toService(o)
		if !matchService(sv, f) {
			continue
		}
		if status {
			sv.ServiceStatus = m.serviceStatus(sv)
		}
		out = append(out, sv)
	}
	return out, nil
}

func matchService(sv swarm.Service, f filters.Args) bool {
	if ids := f.Get("id"); len(ids) > 0 && !anyPrefix(sv.ID, ids) {
		return false
	}
	if names := f.Get("name"); len(names) > 0 && !anyPrefix(sv.Spec.Name, names) {
		return false
	}
	if f.Contains("label") && !f.MatchKVList("label", sv.Spec.Labels) {
		return false
	}
	if f.Contains("mode") {
		mode := "replicated"
		if sv.Spec.Mode.Global != nil {
			mode = "global"
		}
		if !f.ExactMatch("mode", mode) {
			return false
		}
	}
	return true
}

// serviceStatus counts a service's running tasks and the tasks it wants.
func (m *manager) serviceStatus(sv swarm.Service) *swarm.ServiceStatus {
	st := &swarm.ServiceStatus{}
	for _, o := range m.store.List(kindTask) {
		t := toTask(o)
		if t.ServiceID != sv.ID || t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		if sv.Spec.Mode.Global != nil {
			st.DesiredTasks++
		}
		if t.Status.State == swarm.TaskStateRunning {
			st.RunningTasks++
		}
	}
	if r := sv.Spec.Mode.Replicated; r != nil {
		st.DesiredTasks = 1 // unset replicas mean one, as the orchestrator runs
		if r.Replicas != nil {
			st.DesiredTasks = *r.Replicas
		}
	} else if sv.Spec.Mode.Global == nil {
		st.DesiredTasks = 1 // no mode at all is a replicated service of one
	}
	return st
}

// resolveService finds a service by full ID, then name, then unique ID prefix.
func (m *manager) resolveService(ref string) (store.Object, swarm.Service, error) {
	if o, ok := m.store.Get(kindService, ref); ok {
		return o, toService(o), nil
	}
	var byPrefix []store.Object
	for _, o := range m.store.List(kindService) {
		sv := toService(o)
		if sv.Spec.Name == ref {
			return o, sv, nil
		}
		if strings.HasPrefix(o.ID, ref) {
			byPrefix = append(byPrefix, o)
		}
	}
	switch len(byPrefix) {
	case 1:
		return byPrefix[0], toService(byPrefix[0]), nil
	case 0:
		return store.Object{}, swarm.Service{}, errdefs.NotFound(fmt.Errorf("service %s not found", ref))
	}
	return store.Object{}, swarm.Service{}, errdefs.InvalidParameter(fmt.Errorf("service %s is ambiguous (%d matches found)", ref, len(byPrefix)))
}

// InspectService describes one service.
func (s *Service) InspectService(ctx context.Context, ref string) (swarm.Service, error) {
	m, _, err := s.managerView()
	if err != nil {
		return swarm.Service{}, err
	}
	_, sv, err := m.resolveService(ref)
	return sv, err
}

// UpdateService replaces a service's spec (version is the one the client read); rollback "previous"
// goes back to the spec before the last update.
func (s *Service) UpdateService(ctx context.Context, ref string, version uint64, spec swarm.ServiceSpec, rollback string) error {
	m, _, err := s.managerView()
	if err != nil {
		return err
	}
	o, sv, err := m.resolveService(ref)
	if err != nil {
		return err
	}
	if o.Version != version {
		return storeError(store.ErrConflict)
	}
	cur := sv.Spec
	switch rollback {
	case "":
		if err := orchestrator.ValidateUpdate(&cur, &spec); err != nil {
			return errdefs.InvalidParameter(err)
		}
		if err := m.resolveServiceNetworks(&spec); err != nil {
			return err
		}
		if err := m.checkPublishedPorts(sv.ID, spec); err != nil {
			return err
		}
		if usesIngress(swarm.Service{Spec: cur}) != usesIngress(swarm.Service{Spec: spec}) {
			// The tasks join or leave the ingress network: only new tasks can (as swarmkit, which
			// counts a changed endpoint as a changed task).
			spec.TaskTemplate.ForceUpdate++
		}
		if spec.Name != cur.Name {
			return errdefs.InvalidParameter(errors.New("rpc error: code = Unimplemented desc = renaming services is not supported"))
		}
		sv.Spec, sv.PreviousSpec = spec, &cur
		if !bytes.Equal(encode(cur.TaskTemplate), encode(spec.TaskTemplate)) {
			// The rollout starts now, so a client that waits for it sees it under way at once.
			now := time.Now().UTC()
			sv.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, StartedAt: &now, Message: "update in progress"}
		}
	case "previous":
		if sv.PreviousSpec == nil {
			return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = FailedPrecondition desc = service %s does not have a previous spec", sv.ID))
		}
		sv.Spec, sv.PreviousSpec = *sv.PreviousSpec, &cur
		now := time.Now().UTC()
		sv.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackStarted, StartedAt: &now, Message: "manually requested rollback"}
	default:
		return errdefs.InvalidParameter(fmt.Errorf("unrecognized rollback option %s", rollback))
	}
	sv.Endpoint = endpoint(sv.Spec, sv.Endpoint, &cur)
	return s.apply(ctx, m, store.Change{Op: store.OpPut, Kind: kindService, ID: sv.ID, IfVersion: o.Version, Data: encodeService(sv)})
}

// RemoveService deletes a service; the orchestrator removes its tasks and the nodes their containers.
func (s *Service) RemoveService(ctx context.Context, ref string) error {
	m, _, err := s.managerView()
	if err != nil {
		return err
	}
	o, _, err := m.resolveService(ref)
	if err != nil {
		return err
	}
	return s.apply(ctx, m, store.Change{Op: store.OpDelete, Kind: kindService, ID: o.ID})
}

// Tasks lists the tasks matching f (service and node by ID or name).
func (s *Service) Tasks(ctx context.Context, f filters.Args) ([]swarm.Task, error) {
	m, _, err := s.managerView()
	if err != nil {
		return nil, err
	}
	if err := f.Validate(taskFilters); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	svcIDs := map[string]bool{}
	names := map[string]string{}
	templates := map[string]string{}
	for _, o := range m.store.List(kindService) {
		sv := toService(o)
		names[o.ID] = sv.Spec.Name
		templates[o.ID] = string(encode(sv.Spec.TaskTemplate))
	}
	upToDate := f.Contains("_up-to-date")
	for _, ref := range f.Get("service") {
		o, _, err := m.resolveService(ref)
		if err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			return nil, err
		}
		svcIDs[o.ID] = true
	}
	nodeIDs := map[string]bool{}
	for _, ref := range f.Get("node") {
		if o, _, err := m.resolveNode(ref); err == nil {
			nodeIDs[o.ID] = true
		}
	}
	out := []swarm.Task{}
	for _, o := range m.store.List(kindTask) {
		t := toTask(o)
		name := taskName(names[t.ServiceID], t)
		switch {
		case f.Contains("service") && !svcIDs[t.ServiceID],
			f.Contains("node") && !nodeIDs[t.NodeID],
			f.Contains("desired-state") && !f.ExactMatch("desired-state", string(t.DesiredState)),
			f.Contains("id") && !anyPrefix(t.ID, f.Get("id")),
			f.Contains("name") && !anyPrefix(name, f.Get("name")),
			f.Contains("label") && !f.MatchKVList("label", taskLabels(t)),
			upToDate && string(encode(t.Spec)) != templates[t.ServiceID]:
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

func taskLabels(t swarm.Task) map[string]string {
	if t.Spec.ContainerSpec == nil {
		return nil
	}
	return t.Spec.ContainerSpec.Labels
}

// taskName is Docker's <service>.<slot> (or <service>.<node> for global services).
func taskName(service string, t swarm.Task) string {
	if t.Slot != 0 {
		return service + "." + strconv.Itoa(t.Slot)
	}
	return service + "." + t.NodeID
}

// InspectTask describes one task by ID or unique ID prefix.
func (s *Service) InspectTask(ctx context.Context, ref string) (swarm.Task, error) {
	m, _, err := s.managerView()
	if err != nil {
		return swarm.Task{}, err
	}
	return m.resolveTask(ref)
}

// resolveTask finds a task by full ID, then unique ID prefix.
func (m *manager) resolveTask(ref string) (swarm.Task, error) {
	if o, ok := m.store.Get(kindTask, ref); ok {
		return toTask(o), nil
	}
	var found []store.Object
	for _, o := range m.store.List(kindTask) {
		if strings.HasPrefix(o.ID, ref) {
			found = append(found, o)
		}
	}
	if len(found) == 1 {
		return toTask(found[0]), nil
	}
	if len(found) > 1 {
		return swarm.Task{}, errdefs.InvalidParameter(fmt.Errorf("task %s is ambiguous (%d matches found)", ref, len(found)))
	}
	return swarm.Task{}, errdefs.NotFound(fmt.Errorf("task %s not found", ref))
}

var (
	svcLeft  = []string{"agile", "bold", "brave", "calm", "clever", "eager", "gentle", "happy", "jolly", "keen", "lucid", "nifty", "quiet", "serene", "swift", "vivid", "wise"}
	svcRight = []string{"babbage", "bohr", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "kepler", "knuth", "lamport", "lovelace", "noether", "pascal", "shannon", "turing"}
)

// serviceName is a generated name for a service created without one, in Docker's adjective_surname form.
func serviceName() string {
	return svcLeft[rand.IntN(len(svcLeft))] + "_" + svcRight[rand.IntN(len(svcRight))]
}
