package integration

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLogsSinceUntil(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, busybox, "sh", "-c", "echo early; sleep 1.5; echo late")
	if out := mustDocker(t, "wait", name); out != "0" {
		t.Fatalf("wait: %s", out)
	}
	ts := strings.Fields(mustDocker(t, "logs", "-t", name))
	if len(ts) != 4 {
		t.Fatalf("logs -t: %v", ts)
	}
	lateAt, err := time.Parse(time.RFC3339Nano, ts[2])
	if err != nil {
		t.Fatal(err)
	}
	cut := lateAt.Add(-500 * time.Millisecond).Format(time.RFC3339Nano)
	if out := mustDocker(t, "logs", "--since", cut, name); out != "late" {
		t.Errorf("--since %s: %q", cut, out)
	}
	if out := mustDocker(t, "logs", "--until", cut, name); out != "early" {
		t.Errorf("--until %s: %q", cut, out)
	}
	if out := mustDocker(t, "logs", "--since", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10), name); out != "" {
		t.Errorf("--since the future: %q", out)
	}
}

func TestDetachedAutoRemoveAndForceRemove(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--rm", "--name", name, busybox, "sh", "-c", "sleep 0.3")
	waitFor(t, 10*time.Second, func() bool { return docker(t, "inspect", name).code != 0 })

	mustDocker(t, "run", "-d", "--name", name, busybox, "sleep", "60")
	start := time.Now()
	mustDocker(t, "rm", "-f", name)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("rm -f took %v", el)
	}
	if r := docker(t, "inspect", name); r.code == 0 {
		t.Errorf("container survived rm -f")
	}
}

func TestBerthCLIOutputs(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	r := berth(t, "run", "-d", "--name", name, busybox, "sleep", "30")
	if r.code != 0 || len(strings.TrimSpace(r.stdout)) != 64 {
		t.Fatalf("berth run -d: %s", r)
	}
	r = berth(t, "ps")
	if r.code != 0 || !strings.Contains(r.stdout, "CONTAINER ID") || !strings.Contains(r.stdout, name) || !strings.Contains(r.stdout, "Up ") {
		t.Errorf("berth ps: %s", r)
	}
	if r := berth(t, "inspect", "-f", "{{.State.Running}} {{.Config.Image}}", name); strings.TrimSpace(r.stdout) != "true "+busybox {
		t.Errorf("berth inspect: %s", r)
	}
	if r := berth(t, "images"); !strings.Contains(r.stdout, "busybox") || !strings.Contains(r.stdout, "IMAGE ID") {
		t.Errorf("berth images: %s", r)
	}
	if r := berth(t, "history", busybox); r.code != 0 || !strings.Contains(r.stdout, "CREATED BY") {
		t.Errorf("berth history: %s", r)
	}
	if r := berth(t, "rm", name); r.code == 0 || !strings.Contains(r.stderr, "container is running") {
		t.Errorf("berth rm of a running container: %s", r)
	}
	if r := berth(t, "stop", "-t", "0", name); r.code != 0 {
		t.Errorf("berth stop: %s", r)
	}
	if r := berth(t, "rm", name); r.code != 0 {
		t.Errorf("berth rm: %s", r)
	}
	if r := berth(t, "version"); r.code != 0 || !strings.Contains(r.stdout, "Server") {
		t.Errorf("berth version: %s", r)
	}
}
