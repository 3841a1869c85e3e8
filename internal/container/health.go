package container

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// Docker's defaults for a HEALTHCHECK that leaves a field at zero.
const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultProbeRetries  = 3
	defaultStartInterval = 5 * time.Second
	// Docker keeps the last five results and the first 4 KiB of each probe's output.
	maxHealthLog   = 5
	maxProbeOutput = 4096
)

// healthcheckOf returns the healthcheck a container runs, or nil when it has none or disabled it.
func healthcheckOf(cfg *container.Config) *container.HealthConfig {
	if cfg == nil || cfg.Healthcheck == nil {
		return nil
	}
	h := cfg.Healthcheck
	if len(h.Test) == 0 || h.Test[0] == "NONE" {
		return nil
	}
	return h
}

// startHealth begins probing a container that just started (reset: status back to "starting", as Docker
// does on every start) or that berthd found running at restore (reset false: keep what was recorded).
// The prober ends with the run. c.mu must be held.
func (s *Service) startHealth(c *ctr, reset bool) {
	hc := healthcheckOf(c.rec.Config)
	if hc == nil {
		c.rec.State.Health = nil
		return
	}
	if _, ok := s.cfg.Monitor.(ExecMonitor); !ok {
		return
	}
	if reset || c.rec.State.Health == nil {
		h := &container.Health{Status: container.Starting}
		if old := c.rec.State.Health; old != nil {
			h.Log = old.Log
		}
		c.rec.State.Health = h
	}
	go s.probeLoop(c, c.exited, *hc, c.rec.State.StartedAt)
}

// probeLoop runs a container's healthcheck until its run ends (exited closes).
func (s *Service) probeLoop(c *ctr, exited <-chan struct{}, hc container.HealthConfig, started time.Time) {
	interval := orDefault(hc.Interval, defaultProbeInterval)
	startInterval := orDefault(hc.StartInterval, defaultStartInterval)
	// Within the start period a container that is still starting is probed at the start interval, and
	// its failures do not count.
	inStartPeriod := func() bool {
		return time.Since(started) < hc.StartPeriod
	}
	next := func() time.Duration {
		if inStartPeriod() && s.healthStatus(c) == container.Starting {
			return startInterval
		}
		return interval
	}
	t := time.NewTimer(next())
	defer t.Stop()
	for {
		select {
		case <-exited:
			return
		case <-t.C:
		}
		if s.paused(c) {
			t.Reset(next())
			continue
		}
		res := s.probe(c, exited, hc)
		select {
		case <-exited:
			// The run ended under the probe: its failure says nothing about health.
			return
		default:
		}
		s.recordProbe(c, res, hc, inStartPeriod())
		t.Reset(next())
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (s *Service) healthStatus(c *ctr) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h := c.rec.State.Health; h != nil {
		return h.Status
	}
	return container.NoHealthcheck
}

func (s *Service) paused(c *ctr) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.State.Paused
}

// probe runs the healthcheck's command once inside the container, as an exec, and reports its exit code
// and output. A probe that cannot run or outlives its timeout counts as a failure with exit code -1.
func (s *Service) probe(c *ctr, exited <-chan struct{}, hc container.HealthConfig) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now().UTC(), ExitCode: -1}
	defer func() { res.End = time.Now().UTC() }()
	var cmd []string
	switch hc.Test[0] {
	case "CMD":
		cmd = hc.Test[1:]
	case "CMD-SHELL":
		cmd = append([]string{"/bin/sh", "-c"}, hc.Test[1:]...)
	default:
		res.Output = fmt.Sprintf("unknown healthcheck type %q (expected CMD or CMD-SHELL)", hc.Test[0])
		return res
	}
	if len(cmd) == 0 {
		res.Output = "healthcheck has no command"
		return res
	}
	mon := s.cfg.Monitor.(ExecMonitor)
	p, err := s.execProcess(c, container.ExecOptions{Cmd: cmd})
	if err != nil {
		res.Output = err.Error()
		return res
	}
	c.mu.Lock()
	id := c.rec.ID
	c.mu.Unlock()
	timeout := orDefault(hc.Timeout, defaultProbeTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req := ExecRequest{ID: id, ExecID: newExecID(), Process: p, Attach: true, Stdout: true, Stderr: true}
	st, conn, err := mon.Exec(ctx, req)
	if err != nil {
		res.Output = execError(err).Error()
		return res
	}
	_ = conn.CloseWrite()
	done := make(chan struct{})
	out := &cappedBuffer{max: maxProbeOutput}
	go func() {
		defer close(done)
		// Output beyond the cap is read and dropped so the process never blocks on a full pipe.
		_, _ = stdcopy.StdCopy(out, out, conn)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		// The process is the monitor's child in our PID namespace; killing it ends the stream.
		_ = syscall.Kill(st.Pid, syscall.SIGKILL)
		_ = conn.Close()
		<-done
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		return res
	case <-exited:
		_ = conn.Close()
		<-done
		return res
	}
	_ = conn.Close()
	res.Output = out.String()
	fin, err := mon.ExecState(context.Background(), id, req.ExecID)
	switch {
	case err != nil:
		res.Output = err.Error()
	case fin.Running:
		res.Output = "healthcheck process still running after its output closed"
	default:
		res.ExitCode = fin.ExitCode
	}
	return res
}

// recordProbe folds a probe's result into the container's health, as Docker does: success makes it
// healthy; Retries consecutive failures make it unhealthy, except that failures in the start period do
// not count while it has never been healthy.
func (s *Service) recordProbe(c *ctr, res *container.HealthcheckResult, hc container.HealthConfig, inStartPeriod bool) {
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.rec.State.Health
	if old == nil || c.rec.State.Status != "running" {
		return
	}
	h := nextHealth(old, res, retries, inStartPeriod)
	c.rec.State.Health = h
	if err := saveRecord(s.cfg.DB, &c.rec); err != nil {
		s.log.Warn("saving container health", "id", c.rec.ID, "err", err)
	}
	if h.Status != old.Status {
		c.notify()
		s.event("health_status: "+h.Status, c.rec.ID, map[string]string{"name": c.rec.Name})
	}
}

// nextHealth is old with one more probe result folded in. It returns a new value and leaves old alone:
// Inspect hands out the record's Health pointer without c.mu held.
func nextHealth(old *container.Health, res *container.HealthcheckResult, retries int, inStartPeriod bool) *container.Health {
	h := &container.Health{Status: old.Status, FailingStreak: old.FailingStreak}
	h.Log = append(slices.Clone(old.Log), res)
	if len(h.Log) > maxHealthLog {
		h.Log = h.Log[len(h.Log)-maxHealthLog:]
	}
	if res.ExitCode == 0 {
		h.Status, h.FailingStreak = container.Healthy, 0
	} else if !(inStartPeriod && old.Status == container.Starting) {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	return h
}

// cappedBuffer keeps the first max bytes written to it and swallows the rest.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string { return b.buf.String() }

var _ io.Writer = (*cappedBuffer)(nil)
