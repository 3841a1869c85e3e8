package orchestrator

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// sim is a cluster in memory: Reconcile's plans are applied to it, and simulated workers move their
// tasks along as berthd's executor would (a task whose image starts with "bad" fails at once).
type sim struct {
	t   *testing.T
	now time.Time
	st  State
	ids int
	// minRunning tracks, per service, the fewest running tasks seen after the first convergence.
	minRunning map[string]int
	// maxInflight is the most tasks of one service seen at once not running (during updates).
	passes int
}

func newSim(t *testing.T, nodes int) *sim {
	s := &sim{t: t, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i := 1; i <= nodes; i++ {
		s.addNode(fmt.Sprintf("node%d", i), nil)
	}
	return s
}

func (s *sim) addNode(id string, labels map[string]string) {
	s.st.Nodes = append(s.st.Nodes, swarm.Node{ID: id,
		Spec:        swarm.NodeSpec{Annotations: swarm.Annotations{Labels: labels}, Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityActive},
		Description: swarm.NodeDescription{Hostname: "host-" + id, Platform: swarm.Platform{OS: "linux", Architecture: "x86_64"}, Resources: swarm.Resources{NanoCPUs: 2e9, MemoryBytes: 4 << 30}},
		Status:      swarm.NodeStatus{State: swarm.NodeStateReady}})
}

func (s *sim) node(id string) *swarm.Node {
	for i := range s.st.Nodes {
		if s.st.Nodes[i].ID == id {
			return &s.st.Nodes[i]
		}
	}
	s.t.Fatalf("no node %s", id)
	return nil
}

func (s *sim) service(id string) *swarm.Service {
	for i := range s.st.Services {
		if s.st.Services[i].ID == id {
			return &s.st.Services[i]
		}
	}
	s.t.Fatalf("no service %s", id)
	return nil
}

func replicatedService(id, image string, replicas uint64) swarm.Service {
	return swarm.Service{ID: id, Spec: swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: id},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}}
}

// setSpec changes a service's template as `service update` does: the old spec becomes PreviousSpec.
func (s *sim) setImage(id, image string) {
	svc := s.service(id)
	prev := svc.Spec
	b := copySpec(prev.TaskTemplate)
	prev.TaskTemplate = copySpec(prev.TaskTemplate)
	b.ContainerSpec.Image = image
	svc.PreviousSpec = &prev
	svc.Spec.TaskTemplate = b
}

// step runs one reconcile pass and one round of the workers; it reports whether anything changed.
func (s *sim) step() bool {
	s.passes++
	p := Reconcile(s.st, Options{Now: s.now, NewID: func() string { s.ids++; return fmt.Sprintf("t%03d", s.ids) }})
	s.apply(p)
	worked := s.work()
	return !p.Empty() || worked
}

func (s *sim) apply(p Plan) {
	del := map[string]bool{}
	for _, id := range p.Delete {
		del[id] = true
	}
	upd := map[string]swarm.Task{}
	for _, t := range p.Update {
		upd[t.ID] = t
	}
	var out []swarm.Task
	for _, t := range s.st.Tasks {
		if del[t.ID] {
			continue
		}
		if u, ok := upd[t.ID]; ok {
			t = u
		}
		out = append(out, t)
	}
	s.st.Tasks = append(out, p.Create...)
	for _, svc := range p.Services {
		*s.service(svc.ID) = svc
	}
}

// work moves tasks on ready nodes: assigned and desired running → running (or failed); desired shutdown →
// shutdown. Tasks on nodes that are down do not move.
func (s *sim) work() bool {
	changed := false
	for i := range s.st.Tasks {
		t := &s.st.Tasks[i]
		if t.NodeID == "" || s.node(t.NodeID).Status.State != swarm.NodeStateReady {
			continue
		}
		switch {
		case t.DesiredState == swarm.TaskStateRunning && rank[t.Status.State] < rank[swarm.TaskStateRunning] && t.Status.State != swarm.TaskStatePending:
			if strings.HasPrefix(t.Spec.ContainerSpec.Image, "bad") {
				t.Status = swarm.TaskStatus{Timestamp: s.now, State: swarm.TaskStateFailed, Err: "task: non-zero exit (1)"}
			} else {
				t.Status = swarm.TaskStatus{Timestamp: s.now, State: swarm.TaskStateRunning}
			}
			changed = true
		case rank[t.DesiredState] > rank[swarm.TaskStateRunning] && !ended(t.Status.State):
			t.Status = swarm.TaskStatus{Timestamp: s.now, State: swarm.TaskStateShutdown}
			changed = true
		}
	}
	return changed
}

// converge steps until nothing changes, a second passing per step (so restart and update delays end).
func (s *sim) converge() {
	s.t.Helper()
	for i := 0; i < 200; i++ {
		changed := s.step()
		s.now = s.now.Add(time.Second)
		if !changed && !s.pendingWake() {
			return
		}
	}
	s.t.Fatalf("no convergence after 200 passes:\n%s", s.dump())
}

// pendingWake reports whether a pass now would do something, or wants to run later.
func (s *sim) pendingWake() bool {
	p := Reconcile(s.st, Options{Now: s.now, NewID: func() string { return "probe" }})
	return !p.Empty() || !p.Wake.IsZero()
}

// running lists running tasks that are meant to run, as "node:image" per service.
func (s *sim) running(svc string) []string {
	var out []string
	for _, t := range s.st.Tasks {
		if t.ServiceID == svc && t.DesiredState == swarm.TaskStateRunning && t.Status.State == swarm.TaskStateRunning {
			out = append(out, t.NodeID+":"+t.Spec.ContainerSpec.Image)
		}
	}
	sort.Strings(out)
	return out
}

func (s *sim) perNode(svc string) map[string]int {
	out := map[string]int{}
	for _, r := range s.running(svc) {
		out[strings.Split(r, ":")[0]]++
	}
	return out
}

func (s *sim) dump() string {
	var b strings.Builder
	for _, t := range s.st.Tasks {
		fmt.Fprintf(&b, "%s svc=%s slot=%d node=%s desired=%s state=%s err=%q image=%s\n", t.ID, t.ServiceID, t.Slot, t.NodeID, t.DesiredState, t.Status.State, t.Status.Err, t.Spec.ContainerSpec.Image)
	}
	for _, svc := range s.st.Services {
		if svc.UpdateStatus != nil {
			fmt.Fprintf(&b, "service %s: %s %s\n", svc.ID, svc.UpdateStatus.State, svc.UpdateStatus.Message)
		}
	}
	return b.String()
}

func TestReplicatedSpreadsAndScales(t *testing.T) {
	s := newSim(t, 3)
	s.st.Services = append(s.st.Services, replicatedService("web", "nginx", 6))
	s.converge()
	if got := s.perNode("web"); len(got) != 3 || got["node1"] != 2 || got["node2"] != 2 || got["node3"] != 2 {
		t.Fatalf("6 replicas on 3 nodes: %v\n%s", got, s.dump())
	}
	// Converged: another pass changes nothing.
	if p := Reconcile(s.st, Options{Now: s.now, NewID: func() string { return "x" }}); !p.Empty() {
		t.Fatalf("a converged cluster got a plan: %+v", p)
	}
	two := uint64(2)
	s.service("web").Spec.Mode.Replicated.Replicas = &two
	s.converge()
	if got := s.running("web"); len(got) != 2 {
		t.Fatalf("scaled to 2: %v", got)
	}
	twenty := uint64(20)
	s.service("web").Spec.Mode.Replicated.Replicas = &twenty
	s.converge()
	if got := s.perNode("web"); got["node1"]+got["node2"]+got["node3"] != 20 || got["node1"] < 6 || got["node2"] < 6 || got["node3"] < 6 {
		t.Fatalf("20 replicas on 3 nodes: %v", got)
	}
	// Slots are 1..20, each with exactly one running task.
	slots := map[int]int{}
	for _, tk := range s.st.Tasks {
		if tk.DesiredState == swarm.TaskStateRunning {
			slots[tk.Slot]++
		}
	}
	for i := 1; i <= 20; i++ {
		if slots[i] != 1 {
			t.Fatalf("slot %d has %d running tasks", i, slots[i])
		}
	}
}

func TestConstraintsAndReservations(t *testing.T) {
	s := newSim(t, 3)
	s.node("node2").Spec.Labels = map[string]string{"zone": "east"}
	east := replicatedService("east", "nginx", 3)
	east.Spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.labels.zone==east"}}
	nowhere := replicatedService("nowhere", "nginx", 2)
	nowhere.Spec.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.labels.zone==mars"}}
	big := replicatedService("big", "nginx", 8)
	big.Spec.TaskTemplate.Resources = &swarm.ResourceRequirements{Reservations: &swarm.Resources{NanoCPUs: 1e9}}
	s.st.Services = append(s.st.Services, east, nowhere, big)
	s.converge()
	if got := s.perNode("east"); got["node2"] != 3 || len(got) != 1 {
		t.Fatalf("constrained to node2: %v", got)
	}
	if got := s.running("nowhere"); len(got) != 0 {
		t.Fatalf("unsatisfiable constraint ran: %v", got)
	}
	for _, tk := range s.st.Tasks {
		if tk.ServiceID == "nowhere" && (tk.Status.State != swarm.TaskStatePending || tk.Status.Err != "no suitable node (scheduling constraints not satisfied on 3 nodes)") {
			t.Fatalf("pending task: %+v", tk.Status)
		}
	}
	if got := s.running("big"); len(got) != 6 {
		t.Fatalf("2 CPUs per node, 1 reserved per task: %d running, want 6", len(got))
	}
	pending := 0
	for _, tk := range s.st.Tasks {
		if tk.ServiceID == "big" && tk.Status.State == swarm.TaskStatePending {
			pending++
			if tk.Status.Err != "no suitable node (insufficient resources on 3 nodes)" {
				t.Fatalf("pending reason: %q", tk.Status.Err)
			}
		}
	}
	if pending != 2 {
		t.Fatalf("%d pending tasks of big, want 2", pending)
	}
	// A node joins with room: the pending tasks go there.
	s.addNode("node4", nil)
	s.converge()
	if got := s.perNode("big"); got["node4"] != 2 {
		t.Fatalf("after node4 joined: %v", got)
	}
	// A bad constraint is refused up front.
	if _, err := ParseConstraints([]string{"node.label.zone==x"}); err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := ParseConstraints([]string{"node.role=manager"}); err == nil {
		t.Fatal("single = accepted")
	}
}

func TestDrainAndNodeDown(t *testing.T) {
	s := newSim(t, 3)
	s.st.Services = append(s.st.Services, replicatedService("web", "nginx", 6))
	s.converge()
	s.node("node1").Spec.Availability = swarm.NodeAvailabilityDrain
	s.converge()
	if got := s.perNode("web"); got["node1"] != 0 || got["node2"] != 3 || got["node3"] != 3 {
		t.Fatalf("after draining node1: %v\n%s", got, s.dump())
	}
	for _, tk := range s.st.Tasks {
		if tk.NodeID == "node1" && tk.Status.State != swarm.TaskStateShutdown {
			t.Fatalf("task on drained node: %+v", tk)
		}
	}
	s.node("node1").Spec.Availability = swarm.NodeAvailabilityActive
	s.node("node2").Status.State = swarm.NodeStateDown
	s.converge()
	if got := s.perNode("web"); got["node2"] != 0 || got["node1"]+got["node3"] != 6 {
		t.Fatalf("after node2 went down: %v\n%s", got, s.dump())
	}
	// node2 comes back: its old tasks are stopped there, nothing is duplicated.
	s.node("node2").Status.State = swarm.NodeStateReady
	s.converge()
	if got := s.running("web"); len(got) != 6 {
		t.Fatalf("after node2 came back: %d running\n%s", len(got), s.dump())
	}
	// A paused node keeps its tasks but takes no new ones.
	s.node("node3").Spec.Availability = swarm.NodeAvailabilityPause
	nine := uint64(9)
	s.service("web").Spec.Mode.Replicated.Replicas = &nine
	s.converge()
	before := s.perNode("web")["node3"]
	if before == 0 || before > 3 {
		t.Fatalf("paused node3 runs %d", before)
	}
	if got := s.perNode("web"); got["node1"]+got["node2"]+got["node3"] != 9 {
		t.Fatalf("9 replicas with node3 paused: %v", got)
	}
}

func TestGlobal(t *testing.T) {
	s := newSim(t, 3)
	s.st.Services = append(s.st.Services, swarm.Service{ID: "agent", Spec: swarm.ServiceSpec{
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "agent"}, Placement: &swarm.Placement{Constraints: []string{"node.role!=manager"}}},
		Mode:         swarm.ServiceMode{Global: &swarm.GlobalService{}},
	}})
	s.node("node3").Spec.Role = swarm.NodeRoleManager
	s.converge()
	if got := s.perNode("agent"); len(got) != 2 || got["node1"] != 1 || got["node2"] != 1 {
		t.Fatalf("global on workers: %v", got)
	}
	s.addNode("node4", nil)
	s.node("node1").Spec.Availability = swarm.NodeAvailabilityDrain
	s.converge()
	if got := s.perNode("agent"); len(got) != 2 || got["node2"] != 1 || got["node4"] != 1 {
		t.Fatalf("after node4 joined and node1 drained: %v", got)
	}
}

func TestRestartPolicy(t *testing.T) {
	s := newSim(t, 2)
	svc := replicatedService("job", "bad", 1)
	s.st.Services = append(s.st.Services, svc)
	// Condition any (default), delay 5s: a failing task is retried every ~5s.
	for i := 0; i < 12; i++ {
		s.step()
		s.now = s.now.Add(time.Second)
	}
	failed := 0
	for _, tk := range s.st.Tasks {
		if tk.Status.State == swarm.TaskStateFailed {
			failed++
		}
	}
	if failed < 2 || failed > 3 {
		t.Fatalf("%d failed attempts in 12s with a 5s delay\n%s", failed, s.dump())
	}
	// Max attempts 1: one retry, then the slot stays empty.
	s2 := newSim(t, 2)
	one := uint64(1)
	zero := time.Duration(0)
	svc2 := replicatedService("job", "bad", 1)
	svc2.Spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure, MaxAttempts: &one, Delay: &zero}
	s2.st.Services = append(s2.st.Services, svc2)
	s2.converge()
	if n := len(s2.st.Tasks); n != 2 {
		t.Fatalf("max attempts 1: %d tasks\n%s", n, s2.dump())
	}
	// Condition none: never restarted.
	s3 := newSim(t, 1)
	svc3 := replicatedService("once", "bad", 1)
	svc3.Spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
	s3.st.Services = append(s3.st.Services, svc3)
	s3.converge()
	if n := len(s3.st.Tasks); n != 1 {
		t.Fatalf("condition none: %d tasks", n)
	}
}

func TestRollingUpdate(t *testing.T) {
	s := newSim(t, 3)
	svc := replicatedService("web", "v1", 6)
	svc.Spec.UpdateConfig = &swarm.UpdateConfig{Parallelism: 2, Delay: 3 * time.Second, Order: swarm.UpdateOrderStartFirst}
	s.st.Services = append(s.st.Services, svc)
	s.converge()
	s.setImage("web", "v2")
	start := s.now
	var batches []time.Time
	prevNew := 0
	for i := 0; i < 200; i++ {
		changed := s.step()
		// start-first: never fewer than 6 running.
		if got := len(s.running("web")); got < 6 {
			t.Fatalf("only %d running during a start-first update\n%s", got, s.dump())
		}
		newTasks := 0
		for _, tk := range s.st.Tasks {
			if tk.ServiceID == "web" && tk.Spec.ContainerSpec.Image == "v2" {
				newTasks++
			}
		}
		if newTasks > prevNew {
			if newTasks-prevNew > 2 {
				t.Fatalf("%d tasks started in one batch with parallelism 2", newTasks-prevNew)
			}
			batches = append(batches, s.now)
			prevNew = newTasks
		}
		s.now = s.now.Add(time.Second)
		if !changed && !s.pendingWake() {
			break
		}
	}
	if got := s.running("web"); len(got) != 6 || !strings.HasSuffix(got[0], ":v2") || !strings.HasSuffix(got[5], ":v2") {
		t.Fatalf("after the update: %v", got)
	}
	if len(batches) != 3 {
		t.Fatalf("%d batches, want 3", len(batches))
	}
	for i := 1; i < len(batches); i++ {
		if batches[i].Sub(batches[i-1]) < 3*time.Second {
			t.Fatalf("batches %v apart, delay is 3s (started %v)", batches[i].Sub(batches[i-1]), start)
		}
	}
	if st := s.service("web").UpdateStatus; st == nil || st.State != swarm.UpdateStateCompleted {
		t.Fatalf("update status: %+v", st)
	}
}

func TestUpdateFailureRollsBack(t *testing.T) {
	s := newSim(t, 3)
	svc := replicatedService("web", "v1", 4)
	svc.Spec.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1, FailureAction: swarm.UpdateFailureActionRollback}
	svc.Spec.RollbackConfig = &swarm.UpdateConfig{Parallelism: 0}
	s.st.Services = append(s.st.Services, svc)
	s.converge()
	s.setImage("web", "bad:v2")
	s.converge()
	got := s.running("web")
	if len(got) != 4 {
		t.Fatalf("after rollback: %v\n%s", got, s.dump())
	}
	for _, r := range got {
		if !strings.HasSuffix(r, ":v1") {
			t.Fatalf("after rollback: %v", got)
		}
	}
	st := s.service("web").UpdateStatus
	if st == nil || st.State != swarm.UpdateStateRollbackCompleted {
		t.Fatalf("update status: %+v\n%s", st, s.dump())
	}
	if s.service("web").Spec.TaskTemplate.ContainerSpec.Image != "v1" {
		t.Fatalf("spec not rolled back: %s", s.service("web").Spec.TaskTemplate.ContainerSpec.Image)
	}

	// The default action pauses; the old tasks keep running.
	p := newSim(t, 2)
	p.st.Services = append(p.st.Services, replicatedService("api", "v1", 3))
	p.converge()
	p.setImage("api", "bad:v2")
	// The failed slot keeps restarting (condition any), as in Docker: run a while rather than converge.
	for i := 0; i < 30; i++ {
		p.step()
		p.now = p.now.Add(time.Second)
	}
	st = p.service("api").UpdateStatus
	if st == nil || st.State != swarm.UpdateStatePaused || !strings.Contains(st.Message, "update paused due to failure or early termination of task") {
		t.Fatalf("update status: %+v\n%s", st, p.dump())
	}
	if got := p.running("api"); len(got) != 2 {
		t.Fatalf("paused update with parallelism 1: %v running (want the 2 untouched v1 tasks)\n%s", got, p.dump())
	}
}

func TestStopFirstNeverRunsTwoPerSlot(t *testing.T) {
	s := newSim(t, 2)
	svc := replicatedService("db", "v1", 2)
	svc.Spec.UpdateConfig = &swarm.UpdateConfig{Parallelism: 1}
	s.st.Services = append(s.st.Services, svc)
	s.converge()
	s.setImage("db", "v2")
	for i := 0; i < 100; i++ {
		changed := s.step()
		bySlot := map[int]int{}
		for _, tk := range s.st.Tasks {
			if tk.Status.State == swarm.TaskStateRunning {
				bySlot[tk.Slot]++
			}
		}
		for slot, n := range bySlot {
			if n > 1 {
				t.Fatalf("slot %d runs %d tasks during a stop-first update\n%s", slot, n, s.dump())
			}
		}
		s.now = s.now.Add(time.Second)
		if !changed && !s.pendingWake() {
			break
		}
	}
	if got := s.running("db"); len(got) != 2 || !strings.HasSuffix(got[0], ":v2") || !strings.HasSuffix(got[1], ":v2") {
		t.Fatalf("after the update: %v\n%s", got, s.dump())
	}
}

func TestRemovedServiceAndHistory(t *testing.T) {
	s := newSim(t, 1)
	zero := time.Duration(0)
	svc := replicatedService("flaky", "bad", 1)
	svc.Spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Delay: &zero}
	s.st.Services = append(s.st.Services, svc, replicatedService("web", "v1", 1))
	for i := 0; i < 20; i++ {
		s.step()
	}
	n := 0
	for _, tk := range s.st.Tasks {
		if tk.ServiceID == "flaky" {
			n++
		}
	}
	if n > defaultHistory+1 {
		t.Fatalf("%d tasks kept for one slot, history limit %d", n, defaultHistory)
	}
	s.st.Services = s.st.Services[1:]
	s.step()
	for _, tk := range s.st.Tasks {
		if tk.ServiceID == "flaky" {
			t.Fatalf("task of a removed service kept: %+v", tk)
		}
	}
}

// BenchmarkReconcile: a converged cluster of 50 services x 20 replicas on 30 nodes, one pass.
func BenchmarkReconcile(b *testing.B) {
	s := newSim(&testing.T{}, 30)
	for i := 0; i < 50; i++ {
		s.st.Services = append(s.st.Services, replicatedService(fmt.Sprintf("svc%d", i), "img", 20))
	}
	for i := 0; i < 5; i++ {
		s.step()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Reconcile(s.st, Options{Now: s.now, NewID: func() string { return "x" }})
	}
}
