package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"
	"golang.org/x/sync/singleflight"
)

// Containers is what the executor needs of the engine's container service. Errors carry errdefs kinds
// (NotFound, Conflict, ...) as the container service's do.
type Containers interface {
	Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error)
	Start(ctx context.Context, ref string) error
	// Stop sends signal ("" for the container's stop signal), then kills after timeout seconds.
	Stop(ctx context.Context, ref, signal string, timeout *int) error
	Remove(ctx context.Context, ref string, force, removeVolumes bool) error
	Inspect(ctx context.Context, ref string) (*container.InspectResponse, error)
	List(ctx context.Context, all bool, limit int, size bool, f filters.Args) ([]container.Summary, error)
	Wait(ctx context.Context, ref string, cond container.WaitCondition) (<-chan container.WaitResponse, error)
}

// Images is what the executor needs of the engine's images: whether one is here, and pulling it.
type Images interface {
	Exists(ctx context.Context, ref string) bool
	// Pull fetches ref from its registry (auth may be nil).
	Pull(ctx context.Context, ref string, auth *registry.AuthConfig) error
}

// Config is what an Executor is built from.
type Config struct {
	// NodeID is this node's ID in the cluster: the node label of every task container, and the slot in
	// the names of global services' containers.
	NodeID string
	// NodeHostname is the node's hostname for templates ({{.Node.Hostname}}); "" means os.Hostname.
	NodeHostname string
	Containers   Containers
	Images       Images
	// Networks chooses each task's networks; nil means LocalNetworks (a local network by name, or the
	// default bridge).
	Networks NetworkResolver
	// PollInterval is how often a starting task's health is checked while it waits to be healthy (a
	// running one is checked five times less often); 0 means 100ms.
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Assignment is one task the cluster assigned to this node.
type Assignment struct {
	Task swarm.Task
	// ServiceName names the task's service (the task itself only carries the service's ID).
	ServiceName string
	// ServiceLabels are the service's labels, for templates ({{.Service.Labels}}).
	ServiceLabels map[string]string `json:",omitempty"`
	// Ports are the service's published ports (its Endpoint's, which the Task type does not carry);
	// those in host mode are bound on this node.
	Ports []swarm.PortConfig `json:",omitempty"`
	// RegistryAuth is used to pull the image when it is missing (service create --with-registry-auth).
	RegistryAuth *registry.AuthConfig `json:",omitempty"`
}

// StatusUpdate is a task's new status.
type StatusUpdate struct {
	TaskID string
	Status swarm.TaskStatus
}

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("executor is closed")

// Executor keeps the engine's task containers matching the tasks assigned to this node.
type Executor struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // runners and removals

	// pulls shares one pull of an image among the tasks that need it (20 replicas, one download).
	pulls singleflight.Group

	applyMu sync.Mutex // one Apply at a time
	mu      sync.Mutex
	tasks   map[string]*runner
	leaving map[string]bool // tasks that left the node whose containers are being stopped and removed
	closed  bool

	// Updates are queued without bound so a slow reader never stalls a task; pump hands them out in order.
	qmu     sync.Mutex
	queue   []StatusUpdate
	qsignal chan struct{}
	updates chan StatusUpdate
	pumped  chan struct{}
}

// New returns an executor; it does nothing until the first Apply.
func New(cfg Config) (*Executor, error) {
	if cfg.Containers == nil || cfg.Images == nil {
		return nil, errors.New("executor: the container and image services are required")
	}
	if cfg.NodeID == "" {
		return nil, errors.New("executor: node ID is required")
	}
	if cfg.Networks == nil {
		cfg.Networks = LocalNetworks{}
	}
	if cfg.NodeHostname == "" {
		cfg.NodeHostname, _ = os.Hostname()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Executor{
		cfg: cfg, log: cfg.Logger.With("component", "executor"),
		ctx: ctx, cancel: cancel,
		tasks:   map[string]*runner{},
		leaving: map[string]bool{},
		qsignal: make(chan struct{}, 1),
		updates: make(chan StatusUpdate),
		pumped:  make(chan struct{}),
	}
	go e.pump()
	return e, nil
}

// Updates delivers every task status change, in order per task. It is closed by Close.
func (e *Executor) Updates() <-chan StatusUpdate { return e.updates }

// Apply makes as the full set of tasks for this node: new tasks are started towards their desired
// state, known ones get their new desired state, and tasks (and task containers found by label) not in
// as are removed. It returns once the work is under way; progress comes through Updates. A task whose
// spec cannot run is not an error here: it ends rejected. A known task's spec is not read again: tasks
// are immutable, only their desired state moves (an update is a new task). Apply refuses a set with a
// task without ID or listed twice, and changes nothing then.
func (e *Executor) Apply(ctx context.Context, as []Assignment) error {
	want := make(map[string]Assignment, len(as))
	for _, a := range as {
		if a.Task.ID == "" {
			return errors.New("task has no ID")
		}
		if _, dup := want[a.Task.ID]; dup {
			return fmt.Errorf("task %s is assigned twice", a.Task.ID)
		}
		if a.Task.NodeID == "" {
			a.Task.NodeID = e.cfg.NodeID
		}
		want[a.Task.ID] = a
	}
	e.applyMu.Lock()
	defer e.applyMu.Unlock()

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	var gone []*runner
	for id, r := range e.tasks {
		if _, ok := want[id]; !ok {
			gone = append(gone, r)
			delete(e.tasks, id)
			e.leaving[id] = true
		}
	}
	var started []*runner
	for id, a := range want {
		if r, ok := e.tasks[id]; ok {
			r.setDesired(a.Task.DesiredState)
			continue
		}
		r := newRunner(e, a)
		e.tasks[id] = r
		started = append(started, r)
	}
	e.wg.Add(len(gone) + len(started))
	e.mu.Unlock()

	for _, r := range gone {
		go func() {
			defer e.wg.Done()
			r.stop()
			// As Docker's agent does (its controller's Remove shuts the task down first), the container
			// gets its stop signal and grace period before it goes: `service rm` must not SIGKILL.
			if err := r.ctl.Shutdown(e.ctx); err != nil && e.ctx.Err() == nil {
				e.log.Warn("stopping task container", "task", r.id, "err", err)
			}
			if err := r.ctl.remove(e.ctx); err != nil && e.ctx.Err() == nil {
				e.log.Warn("removing task container", "task", r.id, "err", err)
			}
			e.mu.Lock()
			delete(e.leaving, r.id)
			e.mu.Unlock()
		}()
	}
	for _, r := range started {
		go func() {
			defer e.wg.Done()
			r.run()
		}()
	}
	return e.sweep(ctx, want)
}

// sweep removes task containers whose task is not assigned here and has no runner: those left by tasks
// that went away while berthd was down.
func (e *Executor) sweep(ctx context.Context, want map[string]Assignment) error {
	list, err := e.cfg.Containers.List(ctx, true, 0, false, filters.NewArgs(filters.Arg("label", LabelTaskID)))
	if err != nil {
		return fmt.Errorf("listing task containers: %w", err)
	}
	for _, c := range list {
		tid := c.Labels[LabelTaskID]
		if _, ok := want[tid]; ok {
			continue
		}
		e.mu.Lock()
		_, running := e.tasks[tid]
		running = running || e.leaving[tid] // being stopped gracefully, then removed
		e.mu.Unlock()
		if running {
			continue
		}
		e.log.Info("removing container of a task no longer assigned", "task", tid, "container", c.ID)
		if err := removeContainer(ctx, e.cfg.Containers, c.ID); err != nil {
			return err
		}
	}
	return nil
}

// pull fetches ref once however many tasks ask for it at the same time. The pull itself lives as long
// as the executor, so a task that stops waiting (it was removed) does not fail the others' pull.
func (e *Executor) pull(ctx context.Context, ref string, auth *registry.AuthConfig) error {
	ch := e.pulls.DoChan(ref, func() (any, error) {
		return nil, e.cfg.Images.Pull(e.ctx, ref, auth)
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Statuses returns the last status of every task the executor runs, by task ID.
func (e *Executor) Statuses() map[string]swarm.TaskStatus {
	e.mu.Lock()
	rs := make([]*runner, 0, len(e.tasks))
	for _, r := range e.tasks {
		rs = append(rs, r)
	}
	e.mu.Unlock()
	out := make(map[string]swarm.TaskStatus, len(rs))
	for _, r := range rs {
		r.mu.Lock()
		out[r.id] = r.status
		r.mu.Unlock()
	}
	return out
}

// Close stops following the tasks and closes Updates. Task containers are left as they are (running
// ones keep running): the next executor adopts them.
func (e *Executor) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	<-e.pumped
	return nil
}

func (e *Executor) publish(u StatusUpdate) {
	e.qmu.Lock()
	e.queue = append(e.queue, u)
	e.qmu.Unlock()
	select {
	case e.qsignal <- struct{}{}:
	default:
	}
}

func (e *Executor) pump() {
	defer close(e.pumped)
	defer close(e.updates)
	for {
		e.qmu.Lock()
		q := e.queue
		e.queue = nil
		e.qmu.Unlock()
		for _, u := range q {
			select {
			case e.updates <- u:
			case <-e.ctx.Done():
				return
			}
		}
		select {
		case <-e.qsignal:
		case <-e.ctx.Done():
			return
		}
	}
}

// runner drives one task to its desired state, a step at a time.
type runner struct {
	e   *Executor
	id  string
	ctl *taskController

	ctx    context.Context // ends when the task leaves this node or the executor closes
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	desired    swarm.TaskState
	status     swarm.TaskStatus
	changed    chan struct{}
	stepCancel context.CancelFunc
}

func newRunner(e *Executor, a Assignment) *runner {
	ctx, cancel := context.WithCancel(e.ctx)
	st := a.Task.Status
	if st.State == "" || rank(st.State) < rank(swarm.TaskStateAssigned) {
		st.State = swarm.TaskStateAssigned
	}
	return &runner{
		e: e, id: a.Task.ID, ctl: newController(e, a),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
		desired: a.Task.DesiredState, status: st,
		changed: make(chan struct{}, 1),
	}
}

// setDesired moves the task's desired state. Moving it past running interrupts the step under way
// (waiting for the container to exit, for its health, for a pull), so the container is stopped at once.
func (r *runner) setDesired(d swarm.TaskState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d == r.desired {
		return
	}
	interrupt := rank(d) > rank(swarm.TaskStateRunning) && rank(r.desired) <= rank(swarm.TaskStateRunning)
	r.desired = d
	if interrupt && r.stepCancel != nil {
		r.stepCancel()
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// stop ends the runner and waits for it.
func (r *runner) stop() {
	r.cancel()
	<-r.done
}

func (r *runner) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		st, desired := r.status, r.desired
		sctx, cancel := context.WithCancel(r.ctx)
		r.stepCancel = cancel
		r.mu.Unlock()

		next, err := step(sctx, st, desired, r.ctl, func() time.Time { return time.Now().UTC() })
		cancel()
		switch {
		case err == nil:
			r.mu.Lock()
			r.status = next
			r.mu.Unlock()
			if next.Err != "" {
				r.e.log.Info("task ended", "task", r.id, "state", next.State, "err", next.Err)
			}
			r.e.publish(StatusUpdate{TaskID: r.id, Status: next})
		case errors.Is(err, errNoop):
			select {
			case <-r.changed:
			case <-r.ctx.Done():
				return
			}
		default: // the step was interrupted
			if r.ctx.Err() != nil {
				return
			}
		}
	}
}
