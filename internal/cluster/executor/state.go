package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// order ranks task states as swarmkit does: a task only ever moves to a higher rank.
var order = map[swarm.TaskState]int{
	swarm.TaskStateNew:       0,
	swarm.TaskStatePending:   64,
	swarm.TaskStateAllocated: 128,
	swarm.TaskStateAssigned:  192,
	swarm.TaskStateAccepted:  256,
	swarm.TaskStatePreparing: 320,
	swarm.TaskStateReady:     384,
	swarm.TaskStateStarting:  448,
	swarm.TaskStateRunning:   512,
	swarm.TaskStateComplete:  576,
	swarm.TaskStateShutdown:  640,
	swarm.TaskStateFailed:    704,
	swarm.TaskStateRejected:  768,
	swarm.TaskStateRemove:    800,
	swarm.TaskStateOrphaned:  832,
}

// rank is a state's place in the order; an unknown or empty state counts as new.
func rank(s swarm.TaskState) int { return order[s] }

// Terminal reports whether a task in state s has finished for good: nothing more happens to it but the
// removal of its container.
func Terminal(s swarm.TaskState) bool { return rank(s) >= rank(swarm.TaskStateComplete) }

// controller does the work of one task's steps against the engine. Every method is idempotent: called
// again after a crash or a cancelled step, it picks up what was already done.
type controller interface {
	// Prepare makes sure the image is present and the container exists.
	Prepare(ctx context.Context) error
	// Start starts the container and returns once it runs (and, with a healthcheck, is healthy).
	// A container that already ran is not started again.
	Start(ctx context.Context) error
	// Wait blocks until the container exits: nil for exit 0, an *ExitError otherwise.
	Wait(ctx context.Context) error
	// Shutdown stops the container with its stop signal and grace period; no container is no error.
	Shutdown(ctx context.Context) error
	// Observe describes the container for the task's status (nil when there is none yet) and the ports
	// it publishes on this node (nil when none).
	Observe(ctx context.Context) (*swarm.ContainerStatus, *swarm.PortStatus)
}

// ExitError is a container's non-zero exit, with why it happened when the executor knows (an unhealthy
// container it stopped). Its text is Docker's: "task: non-zero exit (137): unhealthy container".
type ExitError struct {
	Code  int
	Cause error
}

func (e *ExitError) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("task: non-zero exit (%d): %v", e.Code, e.Cause)
	}
	return fmt.Sprintf("task: non-zero exit (%d)", e.Code)
}

func (e *ExitError) Unwrap() error { return e.Cause }

// ErrUnhealthy is the cause of a task failed because its container's healthcheck failed.
var ErrUnhealthy = errors.New("unhealthy container")

// errNoop says a step found nothing to do: the task already is where its desired state wants it.
var errNoop = errors.New("no transition")

// step moves a task one state towards desired and returns its new status. It returns errNoop when there
// is nothing to do, and the context's error when ctx ended during the step (the caller retries the step).
// Failures do not come back as errors: they are the task's rejected or failed status.
func step(ctx context.Context, st swarm.TaskStatus, desired swarm.TaskState, ctl controller, now func() time.Time) (swarm.TaskStatus, error) {
	next := st
	transition := func(s swarm.TaskState, msg string) (swarm.TaskStatus, error) {
		next.State, next.Message, next.Timestamp = s, msg, now()
		return next, nil
	}
	fatal := func(err error) (swarm.TaskStatus, error) {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		next.Err = err.Error()
		if rank(st.State) < rank(swarm.TaskStateStarting) {
			next.State = swarm.TaskStateRejected
		} else {
			next.State = swarm.TaskStateFailed
		}
		var ee *ExitError
		if errors.As(err, &ee) {
			cs, _ := ctl.Observe(ctx)
			if cs == nil {
				cs = &swarm.ContainerStatus{}
			}
			cs.ExitCode = ee.Code
			next.ContainerStatus = cs
		}
		next.Timestamp = now()
		return next, nil
	}
	withContainer := func() {
		cs, ps := ctl.Observe(ctx)
		if cs != nil {
			next.ContainerStatus = cs
		}
		if ps != nil {
			next.PortStatus = *ps
		} else {
			next.PortStatus = swarm.PortStatus{}
		}
	}

	if Terminal(st.State) {
		return st, errNoop
	}
	if rank(desired) > rank(swarm.TaskStateRunning) {
		// Shutdown, remove (or any end state) wanted: stop whatever runs. A task never started has
		// nothing to stop but still ends as shutdown, as in Docker.
		if err := ctl.Shutdown(ctx); err != nil {
			return fatal(err)
		}
		withContainer()
		return transition(swarm.TaskStateShutdown, "shutdown")
	}
	if rank(st.State) >= rank(desired) && desired != swarm.TaskStateRunning {
		return st, errNoop // e.g. desired ready (prepare only) and already ready
	}
	switch {
	case rank(st.State) < rank(swarm.TaskStateAccepted):
		return transition(swarm.TaskStateAccepted, "accepted")
	case st.State == swarm.TaskStateAccepted:
		return transition(swarm.TaskStatePreparing, "preparing")
	case st.State == swarm.TaskStatePreparing:
		if err := ctl.Prepare(ctx); err != nil {
			return fatal(err)
		}
		withContainer()
		return transition(swarm.TaskStateReady, "prepared")
	case st.State == swarm.TaskStateReady:
		return transition(swarm.TaskStateStarting, "starting")
	case st.State == swarm.TaskStateStarting:
		if err := ctl.Start(ctx); err != nil {
			return fatal(err)
		}
		withContainer()
		return transition(swarm.TaskStateRunning, "started")
	case st.State == swarm.TaskStateRunning:
		if err := ctl.Wait(ctx); err != nil {
			return fatal(err)
		}
		withContainer()
		if next.ContainerStatus != nil {
			next.ContainerStatus.ExitCode = 0
		}
		return transition(swarm.TaskStateComplete, "finished")
	}
	return st, errNoop
}
