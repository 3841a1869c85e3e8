package container

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
)

// Pause freezes every process of a running container with the cgroup freezer (v1 or v2).
func (s *Service) Pause(ctx context.Context, ref string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.rec.ID
	switch {
	case c.rec.State.Status == "restarting":
		return errRestarting(id)
	case !c.running():
		return errdefs.Conflict(fmt.Errorf("Container %s is not running", id))
	case c.rec.State.Paused:
		return errdefs.Conflict(fmt.Errorf("Container %s is already paused", id))
	}
	cg, err := cgroups.New(cgroupPath(id))
	if err != nil {
		return errdefs.System(err)
	}
	if err := cg.Freeze(); err != nil {
		_ = cg.Thaw()
		return errdefs.System(fmt.Errorf("cannot pause container %s: %w", id, err))
	}
	c.rec.State.Paused = true
	if err := saveRecord(s.cfg.DB, &c.rec); err != nil {
		s.log.Error("saving container state", "id", id, "err", err)
	}
	c.notify()
	s.event("pause", id, nil)
	return nil
}

// Unpause thaws a paused container.
func (s *Service) Unpause(ctx context.Context, ref string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.rec.ID
	if !c.running() || !c.rec.State.Paused {
		return errdefs.Conflict(fmt.Errorf("Container %s is not paused", id))
	}
	if err := s.thaw(c); err != nil {
		return err
	}
	s.event("unpause", id, nil)
	return nil
}

// thaw resumes c's processes and records it. c.mu is held.
func (s *Service) thaw(c *ctr) error {
	cg, err := cgroups.New(cgroupPath(c.rec.ID))
	if err != nil {
		return errdefs.System(err)
	}
	if err := cg.Thaw(); err != nil {
		return errdefs.System(fmt.Errorf("cannot unpause container %s: %w", c.rec.ID, err))
	}
	c.rec.State.Paused = false
	if err := saveRecord(s.cfg.DB, &c.rec); err != nil {
		s.log.Error("saving container state", "id", c.rec.ID, "err", err)
	}
	c.notify()
	return nil
}

// unpauseForExit thaws a paused container that has just been sent a signal meant to end it (stop,
// kill, rm -f), so that the signal is delivered. It does nothing for a container that is not paused.
func (s *Service) unpauseForExit(c *ctr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running() || !c.rec.State.Paused {
		return nil
	}
	if err := s.thaw(c); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		// The signal already ended it and its cgroup is gone: nothing is frozen any more.
		c.rec.State.Paused = false
		c.notify()
		return nil
	}
	s.event("unpause", c.rec.ID, nil)
	return nil
}
