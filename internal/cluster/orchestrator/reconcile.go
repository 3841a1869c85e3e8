package orchestrator

import (
	"encoding/json"
	"sort"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// State is what a pass reads: everything the store holds about services, nodes and tasks.
type State struct {
	Services []swarm.Service
	Nodes    []swarm.Node
	Tasks    []swarm.Task
}

// Plan is what a pass wants changed, to be committed in one transaction. Tasks in Update and services in
// Services are whole objects carrying the changes.
type Plan struct {
	Create   []swarm.Task
	Update   []swarm.Task
	Delete   []string
	Services []swarm.Service
	// Wake, when not zero, is when a pass must run again even if nothing else changes: a restart delay
	// or an update delay ends then.
	Wake time.Time
}

// Empty reports whether the plan changes nothing.
func (p Plan) Empty() bool {
	return len(p.Create) == 0 && len(p.Update) == 0 && len(p.Delete) == 0 && len(p.Services) == 0
}

// Options are a pass's clock and id source.
type Options struct {
	Now   time.Time
	NewID func() string
	// HistoryLimit is how many ended tasks a slot keeps (Docker's TaskHistoryRetentionLimit); 0 means 5.
	HistoryLimit int
}

// Defaults of Docker's swarm mode.
const (
	defaultRestartDelay = 5 * time.Second
	defaultMonitor      = 5 * time.Second
	defaultHistory      = 5
)

// rank orders task states as swarmkit does: everything up to running is on the way, the rest has ended.
var rank = map[swarm.TaskState]int{
	swarm.TaskStateNew: 0, swarm.TaskStateAllocated: 1, swarm.TaskStatePending: 2, swarm.TaskStateAssigned: 3,
	swarm.TaskStateAccepted: 4, swarm.TaskStatePreparing: 5, swarm.TaskStateReady: 6, swarm.TaskStateStarting: 7,
	swarm.TaskStateRunning: 8, swarm.TaskStateComplete: 9, swarm.TaskStateShutdown: 10, swarm.TaskStateFailed: 11,
	swarm.TaskStateRejected: 12, swarm.TaskStateRemove: 13, swarm.TaskStateOrphaned: 14,
}

func ended(s swarm.TaskState) bool { return rank[s] > rank[swarm.TaskStateRunning] }
func running(t *swarm.Task) bool   { return t.Status.State == swarm.TaskStateRunning }
func live(t *swarm.Task) bool      { return rank[t.DesiredState] <= rank[swarm.TaskStateRunning] }
func failedState(s swarm.TaskState) bool {
	return s == swarm.TaskStateFailed || s == swarm.TaskStateRejected
}

// pass is one reconcile: a working copy of the tasks and what changed.
type pass struct {
	o       Options
	nodes   map[string]*swarm.Node
	nodeIDs []string // sorted, for deterministic choices
	tasks   map[string]*swarm.Task
	order   []string // task ids in a stable order
	created []string
	isNew   map[string]bool
	enc     map[string]string
	bySvc   map[string][]string // task ids of the store, by service
	changed map[string]bool
	deleted map[string]bool
	svcs    []*swarm.Service
	svcDiff map[string]bool
	wake    time.Time
}

// Reconcile runs one pass of the orchestrators, the update supervisor and the scheduler.
func Reconcile(st State, o Options) Plan {
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = defaultHistory
	}
	p := &pass{o: o, nodes: map[string]*swarm.Node{}, tasks: map[string]*swarm.Task{}, changed: map[string]bool{},
		deleted: map[string]bool{}, svcDiff: map[string]bool{}, isNew: map[string]bool{}, enc: map[string]string{}}
	for i := range st.Nodes {
		n := st.Nodes[i]
		p.nodes[n.ID] = &n
		p.nodeIDs = append(p.nodeIDs, n.ID)
	}
	sort.Strings(p.nodeIDs)
	for _, t := range st.Tasks {
		t := t
		p.tasks[t.ID] = &t
		p.order = append(p.order, t.ID)
	}
	sort.SliceStable(p.order, func(i, j int) bool {
		return p.tasks[p.order[i]].Meta.CreatedAt.Before(p.tasks[p.order[j]].Meta.CreatedAt)
	})
	known := map[string]bool{}
	for i := range st.Services {
		s := st.Services[i]
		p.svcs = append(p.svcs, &s)
		known[s.ID] = true
	}
	// Tasks of removed services go at once: the executors stop containers of tasks they no longer have.
	for _, id := range p.order {
		if !known[p.tasks[id].ServiceID] {
			p.deleted[id] = true
		}
	}
	p.nodeFailures()
	for _, s := range p.svcs {
		switch {
		case s.Spec.Mode.Global != nil:
			p.global(s)
		default:
			p.replicated(s)
		}
		p.trimHistory(s)
	}
	p.schedule()
	return p.plan()
}

func (p *pass) plan() Plan {
	var out Plan
	for _, id := range p.created {
		if !p.deleted[id] {
			out.Create = append(out.Create, *p.tasks[id])
		}
	}
	for _, id := range p.order {
		if p.deleted[id] {
			out.Delete = append(out.Delete, id)
		} else if p.changed[id] {
			out.Update = append(out.Update, *p.tasks[id])
		}
	}
	for _, s := range p.svcs {
		if p.svcDiff[s.ID] {
			out.Services = append(out.Services, *s)
		}
	}
	out.Wake = p.wake
	return out
}

func (p *pass) wakeAt(t time.Time) {
	if p.wake.IsZero() || t.Before(p.wake) {
		p.wake = t
	}
}

// serviceTasks lists the service's tasks still in the store, oldest first, then those made this pass.
func (p *pass) serviceTasks(svcID string) []*swarm.Task {
	if p.bySvc == nil {
		p.bySvc = map[string][]string{}
		for _, id := range p.order {
			sid := p.tasks[id].ServiceID
			p.bySvc[sid] = append(p.bySvc[sid], id)
		}
	}
	var out []*swarm.Task
	for _, id := range p.bySvc[svcID] {
		if !p.deleted[id] {
			out = append(out, p.tasks[id])
		}
	}
	for _, id := range p.created {
		if t := p.tasks[id]; t.ServiceID == svcID && !p.deleted[id] {
			out = append(out, t)
		}
	}
	return out
}

func (p *pass) touch(t *swarm.Task) {
	if !p.isNew[t.ID] {
		p.changed[t.ID] = true
	}
}

// shutdown sets a task's desired state to shutdown (the executor stops it); msg says why when the
// task will never report again (its node is gone).
func (p *pass) shutdown(t *swarm.Task) {
	if t.DesiredState != swarm.TaskStateShutdown {
		t.DesiredState = swarm.TaskStateShutdown
		p.touch(t)
	}
}

// newTask makes a task of s from its current template.
func (p *pass) newTask(s *swarm.Service, slot int, nodeID string, desired swarm.TaskState) *swarm.Task {
	t := &swarm.Task{
		ID:           p.o.NewID(),
		Meta:         swarm.Meta{CreatedAt: p.o.Now, UpdatedAt: p.o.Now},
		Spec:         copySpec(s.Spec.TaskTemplate),
		ServiceID:    s.ID,
		Slot:         slot,
		NodeID:       nodeID,
		Status:       swarm.TaskStatus{Timestamp: p.o.Now, State: swarm.TaskStateNew, Message: "created"},
		DesiredState: desired,
	}
	p.tasks[t.ID] = t
	p.created = append(p.created, t.ID)
	p.isNew[t.ID] = true
	return t
}

// copySpec deep-copies a template through JSON, as the store would: tasks never share maps or slices
// with their service.
func copySpec(s swarm.TaskSpec) swarm.TaskSpec {
	b, _ := json.Marshal(s)
	var out swarm.TaskSpec
	_ = json.Unmarshal(b, &out)
	return out
}

// current reports whether task t was made from service s's current template, comparing them the way
// they look once stored. Encodings are cached for the pass: a pass compares every task at least once.
func (p *pass) current(t *swarm.Task, s *swarm.Service) bool {
	return p.encoded("t"+t.ID, t.Spec) == p.encoded("s"+s.ID, s.Spec.TaskTemplate)
}

func (p *pass) encoded(key string, spec swarm.TaskSpec) string {
	if e, ok := p.enc[key]; ok {
		return e
	}
	b, _ := json.Marshal(spec)
	p.enc[key] = string(b)
	return string(b)
}

// nodeFailures shuts down live tasks on nodes that were removed, are down or are drained. Their slots
// are refilled by the orchestrators in the same pass, elsewhere.
func (p *pass) nodeFailures() {
	for _, id := range p.order {
		t := p.tasks[id]
		if p.deleted[id] || t.NodeID == "" || !live(t) {
			continue
		}
		n, ok := p.nodes[t.NodeID]
		switch {
		case !ok:
			t.Status = swarm.TaskStatus{Timestamp: p.o.Now, State: swarm.TaskStateOrphaned, Message: "node removed from the cluster"}
			p.shutdown(t)
		case n.Status.State == swarm.NodeStateDown || n.Status.State == swarm.NodeStateUnknown:
			if !ended(t.Status.State) {
				t.Status = swarm.TaskStatus{Timestamp: p.o.Now, State: swarm.TaskStateOrphaned, Message: "node is down"}
			}
			p.shutdown(t)
		case n.Spec.Availability == swarm.NodeAvailabilityDrain:
			p.shutdown(t)
		}
	}
}

// eligible reports whether node n may run a task of s, and why not.
func eligible(n *swarm.Node, spec swarm.TaskSpec) (ok bool, constraintsFail bool) {
	if n.Status.State != swarm.NodeStateReady || n.Spec.Availability != swarm.NodeAvailabilityActive {
		return false, false
	}
	if spec.Placement != nil {
		cs, err := ParseConstraints(spec.Placement.Constraints)
		if err != nil {
			return false, true
		}
		for _, c := range cs {
			if !c.Match(n) {
				return false, true
			}
		}
		if len(spec.Placement.Platforms) > 0 {
			match := false
			for _, pl := range spec.Placement.Platforms {
				if (pl.OS == "" || pl.OS == n.Description.Platform.OS) &&
					(pl.Architecture == "" || pl.Architecture == n.Description.Platform.Architecture) {
					match = true
				}
			}
			if !match {
				return false, true
			}
		}
	}
	return true, false
}
