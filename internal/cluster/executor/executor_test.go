package executor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"
)

// memEngine is an in-memory engine for exercising the executor's concurrency under -race; the
// integration tests (integration/executor_test.go) run the same paths against the real services.
type memEngine struct {
	mu      sync.Mutex
	byName  map[string]*memCtr
	images  map[string]bool
	seq     int
	creates int
	pulls   int
	calls   []string // "stop <name> <signal> <grace>" and "remove <name>", in order
}

type memCtr struct {
	id, name string
	labels   map[string]string
	status   container.ContainerState
	code     int
	exited   chan struct{}
}

func newMemEngine() *memEngine {
	return &memEngine{byName: map[string]*memCtr{}, images: map[string]bool{"busybox": true}}
}

func (m *memEngine) find(ref string) (*memCtr, error) {
	for _, c := range m.byName {
		if c.id == ref || c.name == ref {
			return c, nil
		}
	}
	return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
}

func (m *memEngine) Create(_ context.Context, name string, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) (container.CreateResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.images[cfg.Image] {
		return container.CreateResponse{}, errdefs.NotFound(fmt.Errorf("No such image: %s", cfg.Image))
	}
	if _, ok := m.byName[name]; ok {
		return container.CreateResponse{}, errdefs.Conflict(errors.New("name in use"))
	}
	m.seq++
	m.creates++
	c := &memCtr{id: fmt.Sprintf("c%d", m.seq), name: name, labels: cfg.Labels, status: container.StateCreated, exited: make(chan struct{})}
	m.byName[name] = c
	return container.CreateResponse{ID: c.id}, nil
}

func (m *memEngine) Start(_ context.Context, ref string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.find(ref)
	if err == nil {
		c.status = container.StateRunning
	}
	return err
}

func (m *memEngine) exit(ref string, code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, err := m.find(ref); err == nil && c.status == container.StateRunning {
		c.status, c.code = container.StateExited, code
		close(c.exited)
	}
}

func (m *memEngine) Stop(_ context.Context, ref, sig string, secs *int) error {
	m.mu.Lock()
	if c, err := m.find(ref); err == nil {
		grace := "default"
		if secs != nil {
			grace = fmt.Sprint(*secs)
		}
		m.calls = append(m.calls, fmt.Sprintf("stop %s %s %s", c.name, sig, grace))
	}
	m.mu.Unlock()
	m.exit(ref, 0)
	return nil
}

func (m *memEngine) Remove(_ context.Context, ref string, _, _ bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.find(ref)
	if err != nil {
		return err
	}
	m.calls = append(m.calls, "remove "+c.name)
	delete(m.byName, c.name)
	return nil
}

func (m *memEngine) Inspect(_ context.Context, ref string) (*container.InspectResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.find(ref)
	if err != nil {
		return nil, err
	}
	return &container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: c.id, Name: "/" + c.name,
			State: &container.State{Status: c.status, Running: c.status == container.StateRunning, ExitCode: c.code}},
		Config: &container.Config{Labels: c.labels},
	}, nil
}

func (m *memEngine) List(_ context.Context, _ bool, _ int, _ bool, f filters.Args) ([]container.Summary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []container.Summary
	for _, c := range m.byName {
		if _, ok := c.labels[LabelTaskID]; ok {
			out = append(out, container.Summary{ID: c.id, Labels: c.labels})
		}
	}
	return out, nil
}

func (m *memEngine) Wait(ctx context.Context, ref string, _ container.WaitCondition) (<-chan container.WaitResponse, error) {
	m.mu.Lock()
	c, err := m.find(ref)
	m.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make(chan container.WaitResponse, 1)
	go func() {
		defer close(out)
		select {
		case <-c.exited:
			m.mu.Lock()
			code := c.code
			m.mu.Unlock()
			out <- container.WaitResponse{StatusCode: int64(code)}
		case <-ctx.Done():
		}
	}()
	return out, nil
}

func (m *memEngine) Exists(_ context.Context, ref string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.images[ref]
}

// Pull knows one image, "pullme", and takes a while to get it.
func (m *memEngine) Pull(_ context.Context, ref string, _ *registry.AuthConfig) error {
	m.mu.Lock()
	m.pulls++
	m.mu.Unlock()
	if ref != "pullme" {
		return errors.New("no registry here")
	}
	time.Sleep(50 * time.Millisecond)
	m.mu.Lock()
	m.images[ref] = true
	m.mu.Unlock()
	return nil
}

func (m *memEngine) created() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.creates
}

func (m *memEngine) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byName)
}

// collector follows Updates and keeps every task's latest status.
type collector struct {
	mu   sync.Mutex
	last map[string]swarm.TaskStatus
	n    int
}

func collect(e *Executor) *collector {
	c := &collector{last: map[string]swarm.TaskStatus{}}
	go func() {
		for u := range e.Updates() {
			c.mu.Lock()
			c.last[u.TaskID] = u.Status
			c.n++
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *collector) wait(t *testing.T, id string, s swarm.TaskState) swarm.TaskStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		st := c.last[id]
		c.mu.Unlock()
		if st.State == s {
			return st
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("task %s never reached %s (last %+v)", id, s, c.last[id])
	return swarm.TaskStatus{}
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func tasks(n int, image string) []Assignment {
	var as []Assignment
	for i := 1; i <= n; i++ {
		as = append(as, Assignment{ServiceName: "web", Task: swarm.Task{ID: fmt.Sprintf("t%d", i), Slot: i,
			DesiredState: swarm.TaskStateRunning, Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}}}})
	}
	return as
}

func TestExecutorLifecycle(t *testing.T) {
	m := newMemEngine()
	e, err := New(Config{NodeID: "n1", Containers: m, Images: m, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	col := collect(e)
	ctx := context.Background()
	as := append(tasks(4, "busybox"), Assignment{ServiceName: "bad", Task: swarm.Task{ID: "bad1", Slot: 1,
		DesiredState: swarm.TaskStateRunning, Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "nosuch"}}}})
	if err := e.Apply(ctx, as); err != nil {
		t.Fatal(err)
	}
	for _, a := range as[:4] {
		col.wait(t, a.Task.ID, swarm.TaskStateRunning)
	}
	if st := col.wait(t, "bad1", swarm.TaskStateRejected); st.Err != "No such image: nosuch" {
		t.Errorf("rejected with %q", st.Err)
	}

	// The same set again: no update, no container.
	n, creates := col.count(), m.created()
	for i := 0; i < 3; i++ {
		if err := e.Apply(ctx, as); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if col.count() != n || m.created() != creates {
		t.Errorf("re-applying: %d updates, %d creates", col.count()-n, m.created()-creates)
	}

	m.exit("web.1.t1", 3)
	if st := col.wait(t, "t1", swarm.TaskStateFailed); st.Err != "task: non-zero exit (3)" || st.ContainerStatus.ExitCode != 3 {
		t.Errorf("failed: %+v", st)
	}
	as[1].Task.DesiredState = swarm.TaskStateShutdown
	if err := e.Apply(ctx, as); err != nil {
		t.Fatal(err)
	}
	col.wait(t, "t2", swarm.TaskStateShutdown)

	// t3 and bad1 leave the node: t3's container goes.
	if err := e.Apply(ctx, []Assignment{as[0], as[1], as[3]}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.count() != 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if m.count() != 3 {
		t.Errorf("%d containers, want 3", m.count())
	}

	if err := e.Apply(ctx, []Assignment{as[0], as[0]}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate task: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Apply(ctx, as); !errors.Is(err, ErrClosed) {
		t.Errorf("apply after close: %v", err)
	}
	// Close leaves task containers alone: the next executor adopts them.
	e2, _ := New(Config{NodeID: "n1", Containers: m, Images: m, PollInterval: time.Millisecond})
	defer e2.Close()
	col2 := collect(e2)
	as[3].Task.Status = swarm.TaskStatus{State: swarm.TaskStateAssigned}
	creates = m.created()
	if err := e2.Apply(ctx, []Assignment{as[3]}); err != nil {
		t.Fatal(err)
	}
	col2.wait(t, "t4", swarm.TaskStateRunning)
	if m.created() != creates {
		t.Errorf("adoption created %d containers", m.created()-creates)
	}
	deadline = time.Now().Add(5 * time.Second)
	for m.count() != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if m.count() != 1 {
		t.Errorf("%d containers after the sweep, want 1", m.count())
	}
}

// A running task that leaves the node (its service removed) is stopped with its stop signal and grace
// period before its container is removed, as Docker's agent does, rather than killed by the removal.
func TestExecutorGoneTaskStopsGracefully(t *testing.T) {
	m := newMemEngine()
	e, err := New(Config{NodeID: "n1", Containers: m, Images: m, PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	col := collect(e)
	grace := 3 * time.Second
	as := tasks(1, "busybox")
	as[0].Task.Spec.ContainerSpec.StopSignal = "SIGINT"
	as[0].Task.Spec.ContainerSpec.StopGracePeriod = &grace
	if err := e.Apply(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	col.wait(t, "t1", swarm.TaskStateRunning)
	if err := e.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.count() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	m.mu.Lock()
	calls := strings.Join(m.calls, "; ")
	m.mu.Unlock()
	if want := "stop web.1.t1 SIGINT 3; remove web.1.t1"; calls != want {
		t.Errorf("engine calls %q, want %q", calls, want)
	}
}

// Tasks that need the same missing image share one pull.
func TestExecutorSharesPulls(t *testing.T) {
	m := newMemEngine()
	e, err := New(Config{NodeID: "n1", Containers: m, Images: m})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	col := collect(e)
	as := tasks(10, "pullme")
	if err := e.Apply(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		col.wait(t, a.Task.ID, swarm.TaskStateRunning)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pulls != 1 {
		t.Errorf("%d pulls for 10 tasks of one image", m.pulls)
	}
}

// A task with desired state ready (a start-first update's new task) is prepared and waits; moving its
// desired state to running starts it.
func TestExecutorDesiredReady(t *testing.T) {
	m := newMemEngine()
	e, err := New(Config{NodeID: "n1", Containers: m, Images: m})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	col := collect(e)
	as := tasks(1, "busybox")
	as[0].Task.DesiredState = swarm.TaskStateReady
	if err := e.Apply(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	col.wait(t, "t1", swarm.TaskStateReady)
	time.Sleep(20 * time.Millisecond)
	ci, err := m.Inspect(context.Background(), "web.1.t1")
	if err != nil || ci.State.Status != container.StateCreated {
		t.Fatalf("prepared task's container: %v %+v", err, ci)
	}
	if st := e.Statuses()["t1"]; st.State != swarm.TaskStateReady {
		t.Fatalf("task moved on to %s before its desired state did", st.State)
	}
	as[0].Task.DesiredState = swarm.TaskStateRunning
	if err := e.Apply(context.Background(), as); err != nil {
		t.Fatal(err)
	}
	col.wait(t, "t1", swarm.TaskStateRunning)
}
