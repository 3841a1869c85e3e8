package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/executor"
	"github.com/berth-dev/berth/internal/cluster/orchestrator"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/docker/docker/api/types/swarm"
)

// The leader's orchestration loop: after every change to the store (and when the orchestrator asked to
// be woken), the leader reads services, nodes and tasks, folds in the task statuses the agents reported,
// runs orchestrator.Reconcile and commits the statuses and the plan as one raft entry. Every manager runs
// the loop; only the leader acts, so a new leader simply continues where the old one stopped.

// coalesce is how long the loop lets changes gather before a pass, so a burst of writes or statuses
// (20 replicas starting) costs a few passes, not one each.
const coalesce = 15 * time.Millisecond

// statusQueue holds task statuses reported to the leader and not yet committed.
type statusQueue struct {
	mu      sync.Mutex
	pending map[string]swarm.TaskStatus
	kick    chan struct{}
}

func newStatusQueue() *statusQueue {
	return &statusQueue{pending: map[string]swarm.TaskStatus{}, kick: make(chan struct{}, 1)}
}

func (q *statusQueue) add(us []executor.StatusUpdate) {
	q.mu.Lock()
	for _, u := range us {
		q.pending[u.TaskID] = u.Status
	}
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

func (q *statusQueue) take() map[string]swarm.TaskStatus {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending
	q.pending = map[string]swarm.TaskStatus{}
	return p
}

// putBack returns statuses whose commit failed, unless newer ones arrived meanwhile.
func (q *statusQueue) putBack(p map[string]swarm.TaskStatus) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for id, st := range p {
		if _, newer := q.pending[id]; !newer {
			q.pending[id] = st
		}
	}
}

// orchestrate is the loop; it ends with the manager. A pass runs on a change, a reported status, a
// wake-up the orchestrator asked for, or when this manager has just become the leader.
func (s *Service) orchestrate(ctx context.Context, m *manager) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	idle := time.NewTicker(250 * time.Millisecond) // notices gained leadership
	defer idle.Stop()
	due, led := true, false
	var seen uint64      // the store index the last pass read
	var wakeAt time.Time // when the orchestrator asked to run again
	for {
		changed := m.store.Changed()
		idx := m.store.Index()
		lead := m.isLeader()
		if lead && !led {
			// Everything committed before this term is applied first: a pass on a store that lags
			// would place tasks that already exist.
			if err := m.raft.Barrier(5 * time.Second).Error(); err != nil {
				s.log.Debug("swarm: waiting for the store to catch up", "err", err)
				lead = false
			} else {
				m.caughtUp.Store(true)
				s.log.Info("swarm: orchestrating services as the leader")
			}
		}
		if !lead {
			m.caughtUp.Store(false)
		}
		if lead && (due || !led || idx != seen) {
			seen = idx
			wake, err := s.reconcilePass(m)
			wakeAt = wake
			if err != nil {
				s.log.Debug("swarm: orchestration pass", "err", err)
				wakeAt = time.Now().Add(200 * time.Millisecond)
			}
		}
		led, due = lead, false
		wait := time.Hour
		if !wakeAt.IsZero() {
			wait = max(time.Until(wakeAt), coalesce)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-m.statuses.kick:
			due = true
		case <-timer.C:
			due = true
		case <-idle.C:
		}
		time.Sleep(coalesce)
	}
}

// reconcilePass runs one pass and commits it; it returns when the orchestrator wants the next one.
func (s *Service) reconcilePass(m *manager) (time.Time, error) {
	statuses := m.statuses.take()
	st := orchestrator.State{}
	for _, o := range m.store.List(kindService) {
		st.Services = append(st.Services, toService(o))
	}
	voters, leader := m.voters(), m.leaderID()
	for _, o := range m.store.List(kindNode) {
		st.Nodes = append(st.Nodes, m.toSwarmNode(o, decode[nodeObject](o), voters, leader))
	}
	stored := map[string]bool{}
	reported := map[string]swarm.Task{}
	for _, o := range m.store.List(kindTask) {
		t := toTask(o)
		stored[t.ID] = true
		if ns, ok := statuses[t.ID]; ok && !sameStatus(t.Status, ns) {
			t.Status = ns
			reported[t.ID] = t
		}
		st.Tasks = append(st.Tasks, t)
	}
	history := 0
	if _, c, ok := m.cluster(); ok && c.Spec.Orchestration.TaskHistoryRetentionLimit != nil {
		history = int(*c.Spec.Orchestration.TaskHistoryRetentionLimit)
	}
	var nets []networkObject
	for _, o := range m.store.List(kindNetwork) {
		nets = append(nets, toNetwork(o))
	}
	alloc := newAllocator(nets, st.Services, st.Tasks)
	allocated := map[string]bool{}
	for i := range st.Services {
		changed, err := alloc.service(&st.Services[i])
		if err != nil {
			s.log.Warn("swarm: allocating a service's addresses", "service", st.Services[i].Spec.Name, "err", err)
		}
		if changed {
			allocated[st.Services[i].ID] = true
		}
	}
	if err := alloc.nodes(st.Nodes); err != nil {
		s.log.Warn("swarm: allocating the nodes' ingress addresses", "err", err)
	}
	now := time.Now().UTC()
	plan := orchestrator.Reconcile(st, orchestrator.Options{Now: now, NewID: newID, HistoryLimit: history})
	byID := map[string]swarm.Service{}
	for _, sv := range st.Services {
		byID[sv.ID] = sv
	}
	for i := range plan.Create {
		if err := alloc.task(&plan.Create[i], byID[plan.Create[i].ServiceID]); err != nil {
			s.log.Warn("swarm: allocating a task's addresses", "task", plan.Create[i].ID, "err", err)
		}
	}
	for _, sv := range plan.Services {
		delete(allocated, sv.ID) // written with the plan's changes, which include the allocation
	}
	for _, sv := range st.Services {
		if allocated[sv.ID] {
			plan.Services = append(plan.Services, sv)
		}
	}

	var changes []store.Change
	deleted := map[string]bool{}
	for _, id := range plan.Delete {
		deleted[id] = true
		if stored[id] {
			changes = append(changes, store.Change{Op: store.OpDelete, Kind: kindTask, ID: id})
		}
	}
	for _, t := range plan.Update {
		reported[t.ID] = t
	}
	for id, t := range reported {
		if !deleted[id] {
			changes = append(changes, store.Change{Op: store.OpPut, Kind: kindTask, ID: id, Data: encodeTask(t)})
		}
	}
	for _, t := range plan.Create {
		changes = append(changes, store.Change{Op: store.OpCreate, Kind: kindTask, ID: t.ID, Data: encodeTask(t)})
	}
	for _, sv := range plan.Services {
		changes = append(changes, store.Change{Op: store.OpPut, Kind: kindService, ID: sv.ID, IfVersion: sv.Meta.Version.Index, Data: encodeService(sv)})
	}
	changes = append(changes, alloc.changes()...)
	if len(changes) == 0 {
		return plan.Wake, nil
	}
	s.log.Debug("swarm: orchestration pass", "create", len(plan.Create), "update", len(plan.Update), "delete", len(changes)-len(plan.Create)-len(reported)-len(plan.Services), "statuses", len(statuses), "services", len(plan.Services))
	if _, err := m.applyLocal(store.Command{Time: now, Changes: changes}); err != nil {
		m.statuses.putBack(statuses)
		return time.Time{}, err
	}
	return plan.Wake, nil
}

func sameStatus(a, b swarm.TaskStatus) bool {
	return a.State == b.State && a.Message == b.Message && a.Err == b.Err && a.Timestamp.Equal(b.Timestamp) &&
		(a.ContainerStatus == nil) == (b.ContainerStatus == nil)
}
