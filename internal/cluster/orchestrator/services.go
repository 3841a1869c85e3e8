package orchestrator

import (
	"fmt"
	"sort"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// unit is where one task of a service should run: a slot of a replicated service, or a node of a
// global one. tasks are the unit's tasks, oldest first.
type unit struct {
	slot   int
	nodeID string
	tasks  []*swarm.Task
}

func (u *unit) live() []*swarm.Task {
	var out []*swarm.Task
	for _, t := range u.tasks {
		if live(t) {
			out = append(out, t)
		}
	}
	return out
}

// unitKey names a unit: a slot, or a node for a global service.
type unitKey struct {
	slot   int
	nodeID string
}

// units groups the service's tasks by slot, or by node when global.
func (p *pass) units(s *swarm.Service, global bool) map[unitKey]*unit {
	out := map[unitKey]*unit{}
	for _, t := range p.serviceTasks(s.ID) {
		k := unitKey{slot: t.Slot}
		if global {
			k = unitKey{nodeID: t.NodeID}
		}
		u := out[k]
		if u == nil {
			u = &unit{slot: k.slot, nodeID: k.nodeID}
			out[k] = u
		}
		u.tasks = append(u.tasks, t)
	}
	return out
}

// replicated keeps slots 1..replicas filled and stops the tasks of slots above.
func (p *pass) replicated(s *swarm.Service) {
	replicas := 1
	if s.Spec.Mode.Replicated != nil && s.Spec.Mode.Replicated.Replicas != nil {
		replicas = int(*s.Spec.Mode.Replicated.Replicas)
	}
	bySlot := p.units(s, false)
	var units []*unit
	for slot := 1; slot <= replicas; slot++ {
		u := bySlot[unitKey{slot: slot}]
		if u == nil {
			u = &unit{slot: slot}
		}
		units = append(units, u)
	}
	for k, u := range bySlot {
		if k.slot > replicas || k.slot < 1 {
			for _, t := range u.live() {
				p.shutdown(t)
			}
		}
	}
	p.converge(s, units)
}

// global keeps one task on every node eligible for the service, and stops tasks on the others.
func (p *pass) global(s *swarm.Service) {
	byNode := p.units(s, true)
	var units []*unit
	for _, id := range p.nodeIDs {
		n := p.nodes[id]
		if ok, _ := eligible(n, s.Spec.TaskTemplate); ok {
			u := byNode[unitKey{nodeID: id}]
			if u == nil {
				u = &unit{nodeID: id}
			}
			units = append(units, u)
			delete(byNode, unitKey{nodeID: id})
		}
	}
	for _, u := range byNode {
		for _, t := range u.live() {
			p.shutdown(t)
		}
	}
	p.converge(s, units)
}

// converge makes every unit run one task of the service's current template: ended tasks are replaced
// as the restart policy allows, and a changed template rolls out as the update configuration says.
func (p *pass) converge(s *swarm.Service, units []*unit) {
	for _, u := range units {
		p.restart(s, u)
	}
	p.update(s, units)
}

// restart retires the unit's tasks that ended and starts a replacement when the unit has no task left
// on its way to running.
func (p *pass) restart(s *swarm.Service, u *unit) {
	for _, t := range u.live() {
		if ended(t.Status.State) {
			p.shutdown(t)
		}
	}
	if len(u.live()) > 0 {
		return
	}
	if len(u.tasks) > 0 {
		last := u.tasks[len(u.tasks)-1]
		if selfEnded(last) {
			at, ok := p.restartAllowed(s, u, last)
			if !ok {
				return
			}
			if p.o.Now.Before(at) {
				p.wakeAt(at)
				return
			}
		}
	}
	u.tasks = append(u.tasks, p.newTask(s, u.slot, u.nodeID, swarm.TaskStateRunning))
}

// selfEnded reports whether a task ended on its own (its process exited, or it could not start), rather
// than being stopped by the orchestrator.
func selfEnded(t *swarm.Task) bool {
	switch t.Status.State {
	case swarm.TaskStateComplete, swarm.TaskStateFailed, swarm.TaskStateRejected:
		return true
	}
	return false
}

// restartAllowed applies the restart policy to a unit whose last task ended on its own: whether it may
// be replaced, and from when.
func (p *pass) restartAllowed(s *swarm.Service, u *unit, last *swarm.Task) (time.Time, bool) {
	rp := s.Spec.TaskTemplate.RestartPolicy
	cond := swarm.RestartPolicyConditionAny
	delay := defaultRestartDelay
	if rp != nil {
		if rp.Condition != "" {
			cond = rp.Condition
		}
		if rp.Delay != nil {
			delay = *rp.Delay
		}
	}
	switch cond {
	case swarm.RestartPolicyConditionNone:
		return time.Time{}, false
	case swarm.RestartPolicyConditionOnFailure:
		if last.Status.State == swarm.TaskStateComplete {
			return time.Time{}, false
		}
	}
	if rp != nil && rp.MaxAttempts != nil && *rp.MaxAttempts > 0 {
		n := uint64(0)
		for _, t := range u.tasks {
			if !selfEnded(t) || !p.current(t, s) {
				continue
			}
			if rp.Window != nil && *rp.Window > 0 && p.o.Now.Sub(t.Status.Timestamp) > *rp.Window {
				continue
			}
			n++
		}
		// The first run is not a restart.
		if n > *rp.MaxAttempts {
			return time.Time{}, false
		}
	}
	return last.Status.Timestamp.Add(delay), true
}

// stopping reports whether a task was told to stop but has not yet, on a node that can still stop it.
func (p *pass) stopping(t *swarm.Task) bool {
	if live(t) || ended(t.Status.State) {
		return false
	}
	n, ok := p.nodes[t.NodeID]
	return ok && n.Status.State == swarm.NodeStateReady
}

// update rolls a changed template out over the units, batch by batch.
func (p *pass) update(s *swarm.Service, units []*unit) {
	rollingBack := s.UpdateStatus != nil && (s.UpdateStatus.State == swarm.UpdateStateRollbackStarted || s.UpdateStatus.State == swarm.UpdateStateRollbackPaused)
	cfg := s.Spec.UpdateConfig
	if rollingBack {
		cfg = s.Spec.RollbackConfig
	}
	if cfg == nil {
		cfg = &swarm.UpdateConfig{Parallelism: 1}
	}

	var dirty, inflight []*unit
	for _, u := range units {
		var old, fresh []*swarm.Task
		for _, t := range u.live() {
			if p.current(t, s) {
				fresh = append(fresh, t)
			} else {
				old = append(old, t)
			}
		}
		stoppingOld := false
		for _, t := range u.tasks {
			if p.stopping(t) {
				stoppingOld = true
			}
		}
		for _, t := range fresh {
			switch {
			case t.DesiredState == swarm.TaskStateReady && !stoppingOld && len(old) == 0:
				// stop-first: the old task is gone, the new one may start.
				t.DesiredState = swarm.TaskStateRunning
				p.touch(t)
			case running(t) && len(old) > 0:
				// start-first: the new task runs, the old one may go.
				for _, o := range old {
					p.shutdown(o)
				}
				old = nil
			}
		}
		busy := len(old) > 0 && len(fresh) > 0
		for _, t := range fresh {
			if !running(t) {
				busy = true
			}
		}
		if busy {
			inflight = append(inflight, u)
		} else if len(old) > 0 {
			dirty = append(dirty, u)
		}
	}

	st := s.UpdateStatus
	updating := st != nil && (st.State == swarm.UpdateStateUpdating || st.State == swarm.UpdateStateRollbackStarted)
	paused := st != nil && (st.State == swarm.UpdateStatePaused || st.State == swarm.UpdateStateRollbackPaused)

	if updating {
		if t := p.updateFailure(s, cfg, units); t != nil {
			p.failUpdate(s, cfg, rollingBack, t)
			return
		}
	}
	if len(dirty) == 0 && len(inflight) == 0 {
		if updating {
			now := p.o.Now
			if rollingBack {
				s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackCompleted, StartedAt: st.StartedAt, CompletedAt: &now, Message: "rollback completed"}
			} else {
				s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateCompleted, StartedAt: st.StartedAt, CompletedAt: &now, Message: "update completed"}
			}
			p.svcDiff[s.ID] = true
		}
		return
	}
	if paused || len(dirty) == 0 {
		return
	}
	if !updating {
		now := p.o.Now
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateUpdating, StartedAt: &now, Message: "update in progress"}
		p.svcDiff[s.ID] = true
		st = s.UpdateStatus
	}
	capacity := len(dirty)
	if cfg.Parallelism > 0 {
		capacity = int(cfg.Parallelism) - len(inflight)
	}
	if cfg.Delay > 0 && len(inflight) > 0 {
		capacity = 0
	}
	if cfg.Delay > 0 && capacity > 0 {
		// The delay runs from the moment the last batch was all running.
		var last time.Time
		for _, u := range units {
			for _, t := range u.live() {
				if running(t) && p.current(t, s) && st.StartedAt != nil && !t.Meta.CreatedAt.Before(*st.StartedAt) && t.Status.Timestamp.After(last) {
					last = t.Status.Timestamp
				}
			}
		}
		if !last.IsZero() && p.o.Now.Before(last.Add(cfg.Delay)) {
			p.wakeAt(last.Add(cfg.Delay))
			capacity = 0
		}
	}
	sort.SliceStable(dirty, func(i, j int) bool {
		if dirty[i].slot != dirty[j].slot {
			return dirty[i].slot < dirty[j].slot
		}
		return dirty[i].nodeID < dirty[j].nodeID
	})
	for i := 0; i < capacity && i < len(dirty); i++ {
		u := dirty[i]
		if cfg.Order == swarm.UpdateOrderStartFirst {
			p.newTask(s, u.slot, u.nodeID, swarm.TaskStateRunning)
			continue
		}
		wait := false
		for _, t := range u.live() {
			p.shutdown(t)
			if p.stopping(t) {
				wait = true
			}
		}
		desired := swarm.TaskStateRunning
		if wait {
			desired = swarm.TaskStateReady
		}
		p.newTask(s, u.slot, u.nodeID, desired)
	}
}

// updateFailure returns a task of the current update that failed within the monitor window, once the
// failures exceed the allowed ratio.
func (p *pass) updateFailure(s *swarm.Service, cfg *swarm.UpdateConfig, units []*unit) *swarm.Task {
	st := s.UpdateStatus
	if st == nil || st.StartedAt == nil || cfg.FailureAction == swarm.UpdateFailureActionContinue {
		return nil
	}
	monitor := cfg.Monitor
	if monitor == 0 {
		monitor = defaultMonitor
	}
	var failed []*swarm.Task
	for _, u := range units {
		for _, t := range u.tasks {
			if t.Meta.CreatedAt.Before(*st.StartedAt) || !p.current(t, s) {
				continue
			}
			if selfEnded(t) && t.Status.Timestamp.Sub(t.Meta.CreatedAt) <= monitor {
				failed = append(failed, t)
			}
		}
	}
	if len(failed) == 0 || len(units) == 0 {
		return nil
	}
	if float32(len(failed))/float32(len(units)) <= cfg.MaxFailureRatio {
		return nil
	}
	return failed[len(failed)-1]
}

// failUpdate pauses or rolls back an update whose tasks fail.
func (p *pass) failUpdate(s *swarm.Service, cfg *swarm.UpdateConfig, rollingBack bool, t *swarm.Task) {
	now := p.o.Now
	st := s.UpdateStatus
	why := fmt.Sprintf("failure or early termination of task %s", t.ID)
	switch {
	case rollingBack:
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackPaused, StartedAt: st.StartedAt, Message: "rollback paused due to " + why}
	case cfg.FailureAction == swarm.UpdateFailureActionRollback && s.PreviousSpec != nil:
		prev := *s.PreviousSpec
		cur := s.Spec
		s.Spec, s.PreviousSpec = prev, &cur
		delete(p.enc, "s"+s.ID)
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStateRollbackStarted, StartedAt: &now, Message: "update rolled back due to " + why}
	default:
		s.UpdateStatus = &swarm.UpdateStatus{State: swarm.UpdateStatePaused, StartedAt: st.StartedAt, Message: "update paused due to " + why}
	}
	p.svcDiff[s.ID] = true
}

// trimHistory deletes the oldest ended tasks of each slot (or node) beyond the history limit.
func (p *pass) trimHistory(s *swarm.Service) {
	for _, u := range p.units(s, s.Spec.Mode.Global != nil) {
		var done []*swarm.Task
		for _, t := range u.tasks {
			if !live(t) && ended(t.Status.State) {
				done = append(done, t)
			}
		}
		for i := 0; i < len(done)-p.o.HistoryLimit; i++ {
			p.deleted[done[i].ID] = true
		}
	}
}
