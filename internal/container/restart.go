package container

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/docker/docker/api/types/container"
)

// Docker's restart backoff: the first restart waits 100 ms, each further one twice as long, at most a
// minute; a run of 10 s or more starts the sequence over.
const (
	restartBackoffStart = 100 * time.Millisecond
	restartBackoffMax   = time.Minute
	restartResetAfter   = 10 * time.Second
)

// policyWants applies a restart policy to an exit, as Docker does. manuallyStopped is the persisted "the
// user stopped it" flag: it holds back unless-stopped and on-failure, but not always, which comes back
// when berthd restarts even after a stop (a stop only cancels the restart of the run it ended).
// restarts is the restart count so far.
func policyWants(p container.RestartPolicy, exitCode int, restarts int, manuallyStopped bool) bool {
	switch p.Name {
	case container.RestartPolicyAlways:
		return true
	case container.RestartPolicyUnlessStopped:
		return !manuallyStopped
	case container.RestartPolicyOnFailure:
		return !manuallyStopped && exitCode != 0 && (p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount)
	}
	return false
}

// nextBackoff advances c's backoff after a run of length ran and returns the wait before the restart.
// c.mu is held.
func (c *ctr) nextBackoff(ran time.Duration) time.Duration {
	if ran >= restartResetAfter {
		c.backoff = 0
	}
	switch {
	case c.backoff == 0:
		c.backoff = restartBackoffStart
	case c.backoff < restartBackoffMax:
		c.backoff *= 2
	}
	if c.backoff > restartBackoffMax {
		c.backoff = restartBackoffMax
	}
	return c.backoff
}

// cancelRestart stops a scheduled policy restart from happening. c.mu is held.
func (c *ctr) cancelRestart() { c.restartGen++ }

// scheduleRestart starts c again after delay unless something (stop, start, rm, another schedule)
// intervened meanwhile. c.mu is held; the restart itself happens on its own goroutine.
func (s *Service) scheduleRestart(c *ctr, delay time.Duration) {
	c.restartGen++
	gen := c.restartGen
	go func() {
		if delay > 0 {
			time.Sleep(delay)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.gone || c.restartGen != gen || c.rec.State.Status != "restarting" {
			return
		}
		s.restartNow(context.Background(), c)
	}()
}

// restartNow starts c for its restart policy. c.mu is held.
func (s *Service) restartNow(ctx context.Context, c *ctr) {
	id := c.rec.ID
	// A container lost by a crashed monitor may still have processes: they must not run twice.
	killStrays(id)
	if err := s.start(ctx, c); err != nil {
		s.log.Error("restarting container for its restart policy", "id", id, "err", err)
		c.rec.State.Status = "exited"
		c.rec.State.Error = err.Error()
		c.rec.State.ExitCode = exitCodeForStartError(err)
		if err := saveRecord(s.cfg.DB, &c.rec); err != nil {
			s.log.Error("saving container state", "id", id, "err", err)
		}
		s.failPending(c)
		c.notify()
	}
}

// killStrays kills whatever still runs in a container's cgroup before a fresh start.
func killStrays(id string) {
	cg, err := cgroups.New(cgroupPath(id))
	if err != nil {
		return
	}
	if pids, err := cg.Procs(); err == nil && len(pids) > 0 {
		_ = cg.Thaw()
		_ = cg.Kill()
	}
}

func cgroupPath(id string) string { return "/berth/" + id }

// autoStart starts, once berthd is up, the containers their restart policy wants running: every
// "always" container, "unless-stopped" and "on-failure" ones the user did not stop, and those that were
// waiting for a policy restart when berthd went away. This is what brings containers back after a host
// reboot or a daemon restart, as Docker does.
func (s *Service) autoStart(ctx context.Context) {
	for _, c := range s.all() {
		c.mu.Lock()
		r := &c.rec
		p := r.HostConfig.RestartPolicy
		want := false
		switch r.State.Status {
		case "restarting":
			want = true
		case "exited":
			if r.State.StartedAt.IsZero() {
				break // never ran: nothing to bring back
			}
			want = policyWants(p, r.State.ExitCode, r.RestartCount, r.ManuallyStopped)
		}
		if want {
			r.State.Status = "restarting"
			s.log.Info("starting container for its restart policy", "id", r.ID, "policy", p.Name)
			s.scheduleRestart(c, 0)
		}
		c.mu.Unlock()
	}
}

// Restart stops a container (if it runs) with the given signal and timeout, then starts it.
func (s *Service) Restart(ctx context.Context, ref, signal string, timeout *int) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	if err := s.Stop(ctx, ref, signal, timeout); err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	if err := s.Start(ctx, ref); err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	s.event("restart", c.rec.ID, nil)
	return nil
}

// shouldCancelOnKill says whether a kill with sig ends the restart policy for the current run: Docker
// treats SIGKILL and the container's stop signal as the user stopping it.
func shouldCancelOnKill(sig syscall.Signal, stopSignal string) bool {
	if sig == syscall.SIGKILL || stopSignal == "" {
		return true
	}
	ss, err := ParseSignal(stopSignal)
	return err == nil && ss == sig
}

var errRestarting = func(id string) error {
	return errdefs.Conflict(fmt.Errorf("Container %s is restarting, wait until the container is running", id))
}
