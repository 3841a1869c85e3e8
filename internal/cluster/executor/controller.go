package executor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
)

// taskController does one task's steps against the local engine (see controller in state.go).
type taskController struct {
	e    *Executor
	a    Assignment
	name string
}

func newController(e *Executor, a Assignment) *taskController {
	return &taskController{e: e, a: a, name: ContainerName(a.ServiceName, a.Task)}
}

// inspect finds the task's container by its name, checking it is the task's own; nil when there is none.
func (c *taskController) inspect(ctx context.Context) (*container.InspectResponse, error) {
	ci, err := c.e.cfg.Containers.Inspect(ctx, c.name)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if ci.Config == nil || ci.Config.Labels[LabelTaskID] != c.a.Task.ID {
		return nil, errdefs.Conflict(fmt.Errorf("Conflict. The container name %q is already in use by container %q, which is not task %s's", "/"+c.name, ci.ID, c.a.Task.ID))
	}
	return ci, nil
}

func (c *taskController) Prepare(ctx context.Context) error {
	if err := validate(c.a); err != nil {
		return err
	}
	if ci, err := c.inspect(ctx); err != nil || ci != nil {
		return err // adopted (or a foreign container holds the name)
	}
	spec, err := buildSpec(c.a, nodeInfo{ID: c.e.cfg.NodeID, Hostname: c.e.cfg.NodeHostname}, c.e.cfg.Networks)
	if err != nil {
		return err
	}
	img := spec.config.Image
	if !c.e.cfg.Images.Exists(ctx, img) {
		// As Docker does, a failed pull is only logged: creating the container then says what is missing
		// ("No such image: ..."), which becomes the task's error.
		if err := c.e.pull(ctx, img, c.a.RegistryAuth); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.e.log.Warn("pulling task image failed", "task", c.a.Task.ID, "image", img, "err", err)
		}
	}
	_, err = c.e.cfg.Containers.Create(ctx, spec.name, spec.config, spec.hostConfig, spec.networking)
	if errdefs.IsConflict(err) {
		// Someone made it between our look and our create (a concurrent step of the same task).
		if ci, ierr := c.inspect(ctx); ierr == nil && ci != nil {
			return nil
		}
	}
	return err
}

func (c *taskController) Start(ctx context.Context) error {
	ci, err := c.inspect(ctx)
	if err != nil {
		return err
	}
	if ci == nil {
		return errdefs.NotFound(fmt.Errorf("No such container: %s", c.name))
	}
	if ci.State != nil && ci.State.Status == container.StateCreated {
		if err := c.e.cfg.Containers.Start(ctx, ci.ID); err != nil {
			return fmt.Errorf("starting container failed: %w", err)
		}
	}
	// A container that already ran (adopted after a restart) is not started again; Wait sees how it ended.
	if !hasHealthcheck(ci) {
		return nil
	}
	return c.waitHealthy(ctx, ci.ID)
}

func hasHealthcheck(ci *container.InspectResponse) bool {
	hc := ci.Config.Healthcheck
	return hc != nil && len(hc.Test) > 0 && hc.Test[0] != "NONE"
}

// waitHealthy returns once the container's healthcheck passes; an unhealthy container fails the task
// (and is stopped, as Docker's agent does), one that exits first fails it with its exit code.
func (c *taskController) waitHealthy(ctx context.Context, id string) error {
	t := time.NewTicker(c.e.cfg.PollInterval)
	defer t.Stop()
	for {
		ci, err := c.e.cfg.Containers.Inspect(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case ci.State == nil:
		case !ci.State.Running:
			if ci.State.ExitCode == 0 {
				return nil // it finished before its health mattered: the running step reports it complete
			}
			return &ExitError{Code: ci.State.ExitCode}
		case ci.State.Health != nil && ci.State.Health.Status == container.Healthy:
			return nil
		case ci.State.Health != nil && ci.State.Health.Status == container.Unhealthy:
			code := c.stopUnhealthy(ctx, id)
			return &ExitError{Code: code, Cause: ErrUnhealthy}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// stopUnhealthy stops an unhealthy container as a shutdown would, and returns its exit code.
func (c *taskController) stopUnhealthy(ctx context.Context, id string) int {
	if err := c.Shutdown(ctx); err != nil {
		c.e.log.Warn("stopping unhealthy task container", "task", c.a.Task.ID, "err", err)
	}
	if ci, err := c.e.cfg.Containers.Inspect(ctx, id); err == nil && ci.State != nil {
		return ci.State.ExitCode
	}
	return 0
}

func (c *taskController) Wait(ctx context.Context) error {
	ci, err := c.inspect(ctx)
	if err != nil {
		return err
	}
	if ci == nil {
		return errdefs.NotFound(fmt.Errorf("No such container: %s", c.name))
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	unhealthy := make(chan struct{})
	if hasHealthcheck(ci) {
		go func() {
			if c.watchUnhealthy(wctx, ci.ID) {
				close(unhealthy)
				_ = c.Shutdown(wctx)
			}
		}()
	}
	exited, err := c.e.cfg.Containers.Wait(wctx, ci.ID, container.WaitConditionNotRunning)
	if err != nil {
		return err
	}
	select {
	case res, ok := <-exited:
		if !ok {
			return ctx.Err()
		}
		select {
		case <-unhealthy:
			return &ExitError{Code: int(res.StatusCode), Cause: ErrUnhealthy}
		default:
		}
		if res.StatusCode != 0 {
			return &ExitError{Code: int(res.StatusCode)}
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// watchUnhealthy polls the container's health until it is unhealthy (true) or ctx ends (false).
func (c *taskController) watchUnhealthy(ctx context.Context, id string) bool {
	// Less often than while starting: a healthcheck's own interval is seconds, and a node may run many.
	t := time.NewTicker(5 * c.e.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		ci, err := c.e.cfg.Containers.Inspect(ctx, id)
		if err != nil {
			return false
		}
		if ci.State != nil && ci.State.Health != nil && ci.State.Health.Status == container.Unhealthy {
			return true
		}
	}
}

func (c *taskController) Shutdown(ctx context.Context) error {
	ci, err := c.inspect(ctx)
	if err != nil || ci == nil {
		return err
	}
	if ci.State == nil || !ci.State.Running {
		return nil
	}
	cs := c.a.Task.Spec.ContainerSpec
	grace := defaultGracePeriod
	sig := ""
	if cs != nil {
		grace, sig = gracePeriod(cs), cs.StopSignal
	}
	secs := graceSeconds(grace)
	err = c.e.cfg.Containers.Stop(ctx, ci.ID, sig, &secs)
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func (c *taskController) Observe(ctx context.Context) (*swarm.ContainerStatus, *swarm.PortStatus) {
	ci, err := c.inspect(ctx)
	if err != nil || ci == nil {
		return nil, nil
	}
	cs := &swarm.ContainerStatus{ContainerID: ci.ID}
	if ci.State != nil {
		cs.PID, cs.ExitCode = ci.State.Pid, ci.State.ExitCode
	}
	return cs, portStatus(ci)
}

// portStatus lists the ports the container publishes on this node, as Docker's task PortStatus shows
// them (host mode, with the host port actually bound when the spec left it to the engine).
func portStatus(ci *container.InspectResponse) *swarm.PortStatus {
	if ci.NetworkSettings == nil || len(ci.NetworkSettings.Ports) == 0 {
		return nil
	}
	var ps swarm.PortStatus
	for port, bindings := range ci.NetworkSettings.Ports {
		for _, b := range bindings {
			hp, err := strconv.ParseUint(b.HostPort, 10, 16)
			if err != nil {
				continue
			}
			ps.Ports = append(ps.Ports, swarm.PortConfig{
				Protocol: swarm.PortConfigProtocol(port.Proto()), TargetPort: uint32(port.Int()),
				PublishedPort: uint32(hp), PublishMode: swarm.PortConfigPublishModeHost,
			})
		}
	}
	if len(ps.Ports) == 0 {
		return nil
	}
	sort.Slice(ps.Ports, func(i, j int) bool { return ps.Ports[i].TargetPort < ps.Ports[j].TargetPort })
	return &ps
}

// remove deletes the task's container, whatever its state (the task left this node).
func (c *taskController) remove(ctx context.Context) error {
	ci, err := c.inspect(ctx)
	if err != nil || ci == nil {
		if errdefs.IsConflict(err) {
			return nil // the name is someone else's: nothing of ours to remove
		}
		return err
	}
	return removeContainer(ctx, c.e.cfg.Containers, ci.ID)
}

func removeContainer(ctx context.Context, cs Containers, id string) error {
	err := cs.Remove(ctx, id, true, true)
	if err == nil || errdefs.IsNotFound(err) {
		return nil
	}
	// A removal already under way (the sweep and the task's own removal racing) is not a failure.
	if errdefs.IsConflict(err) {
		return nil
	}
	return errors.Join(fmt.Errorf("removing task container %s", id), err)
}
