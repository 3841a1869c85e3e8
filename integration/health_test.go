package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

func healthOf(t *testing.T, name string) *container.Health {
	t.Helper()
	out := mustDocker(t, "inspect", "--format", "{{json .State.Health}}", name)
	var h *container.Health
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("inspect health %q: %v", out, err)
	}
	return h
}

func waitHealth(t *testing.T, name, want string) *container.Health {
	t.Helper()
	var h *container.Health
	waitFor(t, 15*time.Second, func() bool {
		h = healthOf(t, name)
		return h != nil && h.Status == want
	})
	return h
}

// TestHealthcheckTransitions follows a container from starting to healthy to unhealthy as its probe's
// file comes and goes, through inspect, ps, the ps health filter and health_status events. Failures in
// the start period, before the file exists, do not count.
func TestHealthcheckTransitions(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	since := fmt.Sprint(time.Now().Add(-time.Second).Unix())
	mustDocker(t, "run", "-d", "--name", name, "--health-cmd", "cat /tmp/ok", "--health-interval", "100ms",
		"--health-retries", "2", "--health-start-period", "30s", "--health-start-interval", "100ms",
		busybox, "sh", "-c", "sleep 1; echo fine > /tmp/ok; exec sleep 1000")
	if h := healthOf(t, name); h == nil || h.Status != "starting" {
		t.Fatalf("health right after start: %+v", h)
	}
	if ps := mustDocker(t, "ps", "--filter", "name="+name, "--format", "{{.Status}}"); !strings.HasSuffix(ps, "(health: starting)") {
		t.Errorf("ps while starting: %q", ps)
	}
	h := waitHealth(t, name, "healthy")
	if last := h.Log[len(h.Log)-1]; last.ExitCode != 0 || last.Output != "fine\n" || h.FailingStreak != 0 {
		t.Errorf("healthy log: %+v streak %d", last, h.FailingStreak)
	}
	if ps := mustDocker(t, "ps", "--filter", "health=healthy", "--filter", "name="+name, "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(ps, name+" Up") || !strings.HasSuffix(ps, "(healthy)") {
		t.Errorf("ps --filter health=healthy: %q", ps)
	}
	mustDocker(t, "exec", name, "rm", "/tmp/ok")
	h = waitHealth(t, name, "unhealthy")
	if last := h.Log[len(h.Log)-1]; last.ExitCode != 1 || !strings.Contains(last.Output, "/tmp/ok") || h.FailingStreak < 2 || len(h.Log) > 5 {
		t.Errorf("unhealthy: %+v streak %d, %d log entries", last, h.FailingStreak, len(h.Log))
	}
	if ps := mustDocker(t, "ps", "--filter", "health=unhealthy", "--format", "{{.Names}}"); !strings.Contains(ps, name) {
		t.Errorf("ps --filter health=unhealthy: %q", ps)
	}
	if r := docker(t, "ps", "--filter", "health=bogus"); r.code == 0 || !strings.Contains(r.stderr, "Unrecognised filter value for health: bogus") {
		t.Errorf("bad health filter: %s", r)
	}
	until := fmt.Sprint(time.Now().Add(time.Second).Unix())
	time.Sleep(1100 * time.Millisecond)
	ev := mustDocker(t, "events", "--since", since, "--until", until, "--filter", "container="+name,
		"--filter", "event=health_status", "--format", "{{.Action}}")
	if ev != "health_status: healthy\nhealth_status: unhealthy" {
		t.Errorf("health events: %q", ev)
	}
	// Stopped, the container keeps its last health for inspection but ps no longer claims it.
	mustDocker(t, "stop", "-t", "0", name)
	if h := healthOf(t, name); h == nil || len(h.Log) == 0 {
		t.Errorf("health after stop: %+v", h)
	}
	if ps := mustDocker(t, "ps", "-a", "--filter", "health=none", "--filter", "name="+name, "--format", "{{.Names}}"); ps != name {
		t.Errorf("stopped container under health=none: %q", ps)
	}
}

// TestHealthcheckTimeoutAndInheritance: a probe that outlives its timeout fails with Docker's message; a
// committed container passes its healthcheck on to its image; --no-healthcheck turns it off again.
func TestHealthcheckTimeoutAndInheritance(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, "--health-cmd", "sleep 5", "--health-timeout", "200ms",
		"--health-interval", "100ms", "--health-retries", "1", busybox, "sleep", "1000")
	h := waitHealth(t, name, "unhealthy")
	if last := h.Log[len(h.Log)-1]; last.ExitCode != -1 || last.Output != "Health check exceeded timeout (200ms)" {
		t.Errorf("timed-out probe: %+v", last)
	}
	// The killed probe leaves nothing behind in the container.
	if ps := mustDocker(t, "exec", name, "ps", "-o", "comm"); strings.Contains(ps, "sh\n") && strings.Count(ps, "sleep") > 1 {
		t.Errorf("probe processes left: %q", ps)
	}

	tag := "healthimg:" + strings.ReplaceAll(name, "-", "")
	t.Cleanup(func() { _ = dockerCmd("rmi", "-f", tag).Run() })
	src := name + "-src"
	rmOnCleanup(t, src)
	mustDocker(t, "create", "--name", src, "--health-cmd", "true", "--health-interval", "100ms", busybox, "sleep", "1000")
	mustDocker(t, "commit", src, tag)
	if got := mustDocker(t, "image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", tag); got != `["CMD-SHELL","true"]` {
		t.Errorf("committed image healthcheck: %s", got)
	}
	inherit := name + "-inherit"
	rmOnCleanup(t, inherit)
	mustDocker(t, "run", "-d", "--name", inherit, tag)
	waitHealth(t, inherit, "healthy")

	off := name + "-off"
	rmOnCleanup(t, off)
	mustDocker(t, "run", "-d", "--name", off, "--no-healthcheck", tag)
	if h := healthOf(t, off); h != nil {
		t.Errorf("--no-healthcheck still has health: %+v", h)
	}
	if r := berth(t, "run", "--rm", "--no-healthcheck", "--health-cmd", "true", busybox, "true"); r.code == 0 || !strings.Contains(r.stderr, "--no-healthcheck conflicts with --health-* options") {
		t.Errorf("berth conflicting health flags: %s", r)
	}
	if r := berth(t, "run", "-d", "--name", name+"-b", "--health-cmd", "true", "--health-interval", "100ms", busybox, "sleep", "1000"); r.code != 0 {
		t.Fatalf("berth run with health: %s", r)
	}
	rmOnCleanup(t, name+"-b")
	waitHealth(t, name+"-b", "healthy")
}
