package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"
)

// ParseSignal accepts "KILL", "SIGKILL", "kill" or "9".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.InvalidParameter(fmt.Errorf("Invalid signal: %s", s))
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.InvalidParameter(fmt.Errorf("Invalid signal: %s", s))
}

// Kill sends a signal (default SIGKILL) to a running container's main process.
func (s *Service) Kill(ctx context.Context, ref, signal string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = ParseSignal(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	running, id, paused := c.running(), c.rec.ID, c.rec.State.Paused
	ending := shouldCancelOnKill(sig, c.rec.Config.StopSignal)
	if c.rec.State.Status == "restarting" {
		c.mu.Unlock()
		return errRestarting(id)
	}
	if running && ending {
		c.noRestart = true
		c.rec.ManuallyStopped = true
		_ = saveRecord(s.cfg.DB, &c.rec)
	}
	c.mu.Unlock()
	if !running {
		return errdefs.Conflict(fmt.Errorf("cannot kill container: %s: container %s is not running", ref, id))
	}
	if err := s.cfg.Monitor.Kill(ctx, id, int(sig)); err != nil {
		return err
	}
	s.event("kill", id, map[string]string{"signal": fmt.Sprint(int(sig))})
	if paused && ending {
		// The signal waits in the frozen task; thawing delivers it.
		return s.unpauseForExit(c)
	}
	return nil
}

// Stop sends the stop signal, waits up to the timeout for the container to exit, then kills it.
func (s *Service) Stop(ctx context.Context, ref, signal string, timeout *int) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running, id, exited := c.running(), c.rec.ID, c.exited
	if signal == "" {
		signal = c.rec.Config.StopSignal
	}
	t := 10
	if c.rec.Config.StopTimeout != nil {
		t = *c.rec.Config.StopTimeout
	}
	switch c.rec.State.Status {
	case "restarting":
		// Waiting for its policy restart: stopping it just cancels that.
		c.cancelRestart()
		c.rec.State.Status = "exited"
		c.rec.ManuallyStopped = true
		_ = saveRecord(s.cfg.DB, &c.rec)
		c.notify()
		c.mu.Unlock()
		s.event("stop", id, nil)
		return nil
	case "running":
		// Set before the signal: the exit it causes must not trigger the restart policy.
		c.noRestart = true
		c.rec.ManuallyStopped = true
		_ = saveRecord(s.cfg.DB, &c.rec)
	}
	c.mu.Unlock()
	if !running {
		return errdefs.NotModified(fmt.Errorf("container %s is already stopped", id))
	}
	if timeout != nil {
		t = *timeout
	}
	if signal == "" {
		signal = "SIGTERM"
	}
	sig, err := ParseSignal(signal)
	if err != nil {
		return err
	}
	if err := s.stopWith(ctx, id, exited, sig, t); err != nil {
		return err
	}
	s.event("stop", id, nil)
	return nil
}

func (s *Service) stopWith(ctx context.Context, id string, exited <-chan struct{}, sig syscall.Signal, timeout int) error {
	if err := s.cfg.Monitor.Kill(ctx, id, int(sig)); err != nil && !isGone(err) {
		return err
	}
	// A paused container gets the signal once thawed.
	if c, err := s.get(id); err == nil {
		if err := s.unpauseForExit(c); err != nil {
			return err
		}
	}
	if timeout < 0 {
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	select {
	case <-exited:
		return nil
	case <-time.After(time.Duration(timeout) * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := s.cfg.Monitor.Kill(ctx, id, int(syscall.SIGKILL)); err != nil && !isGone(err) {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("container %s did not exit after SIGKILL", id)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func isGone(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "not running") || errdefs.IsNotFound(err))
}

// Remove deletes a container, its writable layer and its files. A running container is refused unless
// force, which kills it first.
func (s *Service) Remove(ctx context.Context, ref string, force, removeVolumes bool) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.rec.State.Status == "removing" {
		c.mu.Unlock()
		return errdefs.Conflict(fmt.Errorf("removal of container %s is already in progress", ref))
	}
	if c.rec.State.Status == "restarting" {
		if !force {
			c.mu.Unlock()
			return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is restarting: stop the container before removing or force remove", c.rec.Name))
		}
		c.cancelRestart()
	}
	if c.running() && force {
		c.noRestart = true
	}
	if c.running() {
		if !force {
			c.mu.Unlock()
			return errdefs.Conflict(fmt.Errorf("cannot remove container \"/%s\": container is running: stop the container before removing or force remove", c.rec.Name))
		}
		id, exited := c.rec.ID, c.exited
		c.mu.Unlock()
		if err := s.stopWith(ctx, id, exited, syscall.SIGKILL, 30); err != nil {
			return fmt.Errorf("could not kill running container %s, cannot remove: %w", id, err)
		}
		c.mu.Lock()
	}
	c.rec.State.Status = "removing"
	r := c.rec
	c.mu.Unlock()

	var errs []error
	_ = s.cfg.Monitor.Delete(ctx, r.ID)
	s.teardownNetwork(r.ID)
	if err := s.cfg.Rootfs.Unmount(s.rootfsDir(r.ID)); err != nil {
		errs = append(errs, err)
	}
	if err := s.cfg.Rootfs.Remove(ctx, r.ID); err != nil {
		errs = append(errs, fmt.Errorf("removing the container's layer: %w", err))
	}
	if err := deleteRecord(s.cfg.DB, r.ID); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		// Keep the record so the user can retry; Docker marks such containers "dead".
		c.mu.Lock()
		c.rec.State.Status = "dead"
		_ = saveRecord(s.cfg.DB, &c.rec)
		c.mu.Unlock()
		return errdefs.System(fmt.Errorf("unable to remove container %s: %w", r.ID, errors.Join(errs...)))
	}
	removeBundle(s.bundleDir(r.ID))
	_ = os.RemoveAll(s.dataDir(r.ID))
	s.unmountVolumes(&r)
	s.releaseMounts(ctx, &r, removeVolumes)
	s.mu.Lock()
	delete(s.byID, r.ID)
	if s.names[r.Name] == r.ID {
		delete(s.names, r.Name)
	}
	s.mu.Unlock()
	c.mu.Lock()
	c.gone = true
	c.notify()
	c.mu.Unlock()
	s.event("destroy", r.ID, map[string]string{"name": r.Name})
	s.setMeta(r.ID, nil)
	return nil
}

// Wait returns a channel that receives the container's exit status when cond is met:
// not-running (at once if it is not running), next-exit (the end of the next run, which may not have
// started yet), or removed.
func (s *Service) Wait(ctx context.Context, ref string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	exitsAtStart := c.exits
	c.mu.Unlock()
	done := func() bool {
		switch cond {
		case container.WaitConditionRemoved:
			return c.gone
		case container.WaitConditionNextExit:
			return c.exits > exitsAtStart || c.gone
		default:
			return !c.running()
		}
	}
	out := make(chan container.WaitResponse, 1)
	go func() {
		defer close(out)
		for {
			c.mu.Lock()
			if done() {
				// A failed start's error is reported by the start request itself; the CLI would print it twice.
				resp := container.WaitResponse{StatusCode: int64(c.rec.State.ExitCode)}
				c.mu.Unlock()
				out <- resp
				return
			}
			changed := c.changedCh()
			c.mu.Unlock()
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Rename gives a container a new name.
func (s *Service) Rename(ctx context.Context, ref, newName string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	if newName == "" {
		return errdefs.InvalidParameter(errors.New("Neither old nor new names may be empty"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.rec.Name
	if strings.TrimPrefix(newName, "/") == old {
		return errdefs.InvalidParameter(errors.New("Renaming a container with the same name as its current name"))
	}
	if err := s.reserveName(newName, c.rec.ID); err != nil {
		return err
	}
	c.rec.Name = strings.TrimPrefix(newName, "/")
	if err := saveRecord(s.cfg.DB, &c.rec); err != nil {
		c.rec.Name = old
		s.releaseName(strings.TrimPrefix(newName, "/"), c.rec.ID)
		return err
	}
	s.releaseName(old, c.rec.ID)
	s.setMeta(c.rec.ID, &c.rec)
	if s.cfg.Networks != nil {
		// The embedded DNS answers to the new name from now on.
		s.cfg.Networks.Rename(c.rec.ID, c.rec.Name)
	}
	s.event("rename", c.rec.ID, map[string]string{"oldName": "/" + old, "name": c.rec.Name})
	return nil
}

// removeBundle deletes a container's bundle without recursion: its rootfs directory is a mount point, and
// a recursive delete of a rootfs still mounted would destroy the container's files.
func removeBundle(dir string) {
	_ = os.Remove(filepath.Join(dir, "rootfs"))
	_ = os.Remove(filepath.Join(dir, "config.json"))
	_ = os.Remove(filepath.Join(dir, "idmap")) // left empty by a remapped container's start
	_ = os.Remove(dir)
}
