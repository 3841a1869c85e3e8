package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/executor"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/swarm"
)

// The agent runs on every node, managers included: it long-polls a manager for the tasks assigned to
// this node, hands them to the executor, and reports the executor's status updates to the leader, which
// writes them to the task objects. A status the store does not show (it was lost with a leader) is sent
// again whenever the assignments come back.

// Executor runs the node's tasks; *executor.Executor is one.
type Executor interface {
	Apply(ctx context.Context, as []executor.Assignment) error
	Updates() <-chan executor.StatusUpdate
	Statuses() map[string]swarm.TaskStatus
	Close() error
}

const (
	pathAssignments = "/assignments"
	pathTaskStatus  = "/task-status"
	opTaskStatus    = "task-status"

	// pollWait is how long a manager holds an assignments call that has nothing new.
	pollWait = 10 * time.Second
)

type assignmentsRequest struct {
	NodeID      string `json:"nodeID"`
	Fingerprint string `json:"fingerprint"`
}

type assignmentsResponse struct {
	// Fingerprint is "<tasks>/<networks>": what the executor acts on, and the network view's digest.
	Fingerprint string                `json:"fingerprint"`
	Assignments []executor.Assignment `json:"assignments"`
	Networks    NodeNetworks          `json:"networks"`
}

// fingerprints splits a response's fingerprint into its tasks' and its networks' parts.
func fingerprints(fp string) (tasks, nets string) {
	tasks, nets, _ = strings.Cut(fp, "/")
	return tasks, nets
}

type taskStatusRequest struct {
	NodeID  string                  `json:"nodeID"`
	Updates []executor.StatusUpdate `json:"updates"`
}

// errNotCaughtUp is what a manager answers an assignments call with unless it leads with a store that
// has caught up: a lagging store could tell a node to remove the containers of tasks it does not know
// yet. The node asks another manager.
var errNotCaughtUp = errdefs.Unavailable(errors.New("this manager does not lead or has not caught up"))

// assignments answers the tasks of node once they differ from what fingerprint describes, or after
// pollWait.
func (m *manager) assignments(ctx context.Context, node, fingerprint string) assignmentsResponse {
	deadline := time.NewTimer(pollWait)
	defer deadline.Stop()
	for {
		changed := m.store.Changed()
		resp := m.assignmentsNow(node)
		if resp.Fingerprint != fingerprint {
			return resp
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return resp
		case <-deadline.C:
			return resp
		}
	}
}

// assignmentsNow lists the node's tasks with what the executor needs of their services. The fingerprint
// covers what the executor acts on: which tasks and their desired states.
func (m *manager) assignmentsNow(node string) assignmentsResponse {
	services := map[string]swarm.Service{}
	for _, o := range m.store.List(kindService) {
		services[o.ID] = toService(o)
	}
	var resp assignmentsResponse
	var keys []string
	var all []swarm.Task
	for _, o := range m.store.List(kindTask) {
		all = append(all, toTask(o))
	}
	for _, t := range all {
		if t.NodeID != node {
			continue
		}
		sv := services[t.ServiceID]
		resp.Assignments = append(resp.Assignments, executor.Assignment{Task: t, ServiceName: sv.Spec.Name, ServiceLabels: sv.Spec.Labels, Ports: sv.Endpoint.Ports})
		keys = append(keys, t.ID+"="+string(t.DesiredState))
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	resp.Networks = m.networkView(node, services, all)
	nh := fnv.New64a()
	nh.Write(encode(resp.Networks))
	resp.Fingerprint = fmt.Sprintf("%d:%x/%x", len(keys), h.Sum64(), nh.Sum64())
	return resp
}

// acceptStatuses queues the statuses node reported for its own tasks (leader only).
func (m *manager) acceptStatuses(req taskStatusRequest) error {
	var ok []executor.StatusUpdate
	for _, u := range req.Updates {
		o, found := m.store.Get(kindTask, u.TaskID)
		if !found {
			continue
		}
		if toTask(o).NodeID != req.NodeID {
			continue // a node reports only its own tasks
		}
		ok = append(ok, u)
	}
	m.statuses.add(ok)
	return nil
}

// runAgent is the agent of node nodeID; it ends with ctx (the node's session).
func (s *Service) runAgent(ctx context.Context, nodeID string) {
	if s.cfg.NewExecutor == nil {
		return
	}
	ex, err := s.cfg.NewExecutor(nodeID)
	if err != nil {
		s.log.Error("swarm: starting the task executor", "err", err)
		return
	}
	defer func() {
		_ = ex.Close()
		if s.leaving.Load() {
			s.removeTasks(nodeID)
			if s.cfg.Networks != nil {
				if err := s.cfg.Networks.SetNetworks(NodeNetworks{}); err != nil {
					s.log.Warn("swarm: removing overlay networks on leave", "err", err)
				}
			}
		}
	}()
	go s.reportStatuses(ctx, nodeID, ex)
	fingerprint := ""
	for ctx.Err() == nil {
		resp, err := s.fetchAssignments(ctx, nodeID, fingerprint)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Debug("swarm: fetching assignments", "err", err)
				sleepCtx(ctx, 300*time.Millisecond)
			}
			continue
		}
		if resp.Fingerprint != fingerprint {
			haveTasks, haveNets := fingerprints(fingerprint)
			wantTasks, wantNets := fingerprints(resp.Fingerprint)
			// Networks first: a new task's container joins them as it starts. A network that cannot be
			// set up does not hold the tasks back (those on other networks, removals): its part of the
			// fingerprint stays unrecorded, so the next round tries again.
			netsDone := true
			if wantNets != haveNets && s.cfg.Networks != nil {
				if err := s.cfg.Networks.SetNetworks(resp.Networks); err != nil {
					level := slog.LevelWarn
					if errors.Is(err, ErrNetworksBusy) {
						level = slog.LevelDebug
					}
					s.log.Log(ctx, level, "swarm: setting up overlay networks", "err", err)
					netsDone = false
				}
			}
			if wantTasks != haveTasks {
				if err := ex.Apply(ctx, resp.Assignments); err != nil {
					s.log.Warn("swarm: applying assignments", "err", err)
					sleepCtx(ctx, time.Second)
					continue
				}
			}
			fingerprint = resp.Fingerprint
			if !netsDone {
				fingerprint = wantTasks + "/"
				sleepCtx(ctx, time.Second)
			}
		}
		// Statuses the store lacks were lost on their way (a leader change): send them again.
		have := ex.Statuses()
		var lost []executor.StatusUpdate
		for _, a := range resp.Assignments {
			if st, ok := have[a.Task.ID]; ok && st.State != "" && st.State != a.Task.Status.State {
				lost = append(lost, executor.StatusUpdate{TaskID: a.Task.ID, Status: st})
			}
		}
		if len(lost) > 0 && resp.Fingerprint == fingerprint {
			_ = s.sendStatuses(ctx, nodeID, lost)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// fetchAssignments asks this node's manager, or on a worker the managers it knows, for its tasks.
func (s *Service) fetchAssignments(ctx context.Context, nodeID, fingerprint string) (assignmentsResponse, error) {
	v := s.current()
	if v.state == nil {
		return assignmentsResponse{}, ErrNotInSwarm
	}
	var resp assignmentsResponse
	if m := v.mgr; m != nil {
		if m.isLeader() && m.caughtUp.Load() {
			return m.assignments(ctx, nodeID, fingerprint), nil
		}
		if addr, _ := m.raft.LeaderWithID(); addr != "" {
			body, _ := json.Marshal(assignmentsRequest{NodeID: nodeID, Fingerprint: fingerprint})
			err := s.client.post(ctx, string(addr), pathAssignments, body, &resp)
			return resp, err
		}
	}
	err := s.workerCall(ctx, v.state, pathAssignments, assignmentsRequest{NodeID: nodeID, Fingerprint: fingerprint}, &resp)
	return resp, err
}

// reportStatuses sends the executor's status updates to the leader in batches: what arrives while one
// batch is on its way goes with the next.
func (s *Service) reportStatuses(ctx context.Context, nodeID string, ex Executor) {
	var batch []executor.StatusUpdate
	updates := ex.Updates()
	for {
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-updates:
				if !ok {
					return
				}
				batch = append(batch, u)
			}
		}
	drain:
		for {
			select {
			case u, ok := <-updates:
				if !ok {
					break drain
				}
				batch = append(batch, u)
			case <-time.After(5 * time.Millisecond):
				break drain
			}
		}
		batch = latest(batch)
		if err := s.sendStatuses(ctx, nodeID, batch); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Debug("swarm: reporting task statuses", "err", err)
			sleepCtx(ctx, 300*time.Millisecond)
			continue
		}
		batch = nil
	}
}

func (s *Service) sendStatuses(ctx context.Context, nodeID string, us []executor.StatusUpdate) error {
	v := s.current()
	if v.state == nil {
		return ErrNotInSwarm
	}
	req := taskStatusRequest{NodeID: nodeID, Updates: us}
	if v.mgr != nil {
		err := s.leaderCall(ctx, v.mgr, opTaskStatus, req, nil)
		if !errors.Is(err, ErrNoLeader) {
			return err
		}
	}
	return s.workerCall(ctx, v.state, pathTaskStatus, req, nil)
}

// latest keeps the last status of each task: a batch that waited for a manager does not grow without
// bound, and the leader only needs where each task is now.
func latest(us []executor.StatusUpdate) []executor.StatusUpdate {
	last := map[string]int{}
	for i, u := range us {
		last[u.TaskID] = i
	}
	out := us[:0]
	for i, u := range us {
		if last[u.TaskID] == i {
			out = append(out, u)
		}
	}
	return out
}

// removeTasks removes this node's task containers when it leaves the swarm: a fresh executor given no
// tasks removes every task container it finds.
func (s *Service) removeTasks(nodeID string) {
	ex, err := s.cfg.NewExecutor(nodeID)
	if err != nil {
		return
	}
	defer ex.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if err := ex.Apply(ctx, nil); err != nil {
		s.log.Warn("swarm: removing task containers on leave", "err", err)
	}
}
