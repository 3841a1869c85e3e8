package integration

import (
	"strings"
	"testing"
)

// TestContainerPrune: docker container prune and system prune remove stopped (exited and created)
// containers that the filters select, never running ones, and report them as Docker does.
func TestContainerPrune(t *testing.T) {
	base := uniqueName(t)
	label := "berth.prune=" + base
	exited, created, running, other := base+"-exited", base+"-created", base+"-running", base+"-other"
	rmOnCleanup(t, exited, created, running, other)
	mustDocker(t, "run", "--name", exited, "--label", label, busybox, "true")
	mustDocker(t, "create", "--name", created, "--label", label, busybox, "true")
	mustDocker(t, "run", "-d", "--name", running, "--label", label, busybox, "sleep", "1000")
	mustDocker(t, "run", "--name", other, "--label", "berth.prune=someone-else", busybox, "true")
	id := func(name string) string { return mustDocker(t, "inspect", "-f", "{{.Id}}", name) }
	exitedID, createdID := id(exited), id(created)

	// until=1h keeps everything made in the last hour.
	out := mustDocker(t, "container", "prune", "-f", "--filter", "label="+label, "--filter", "until=1h")
	if strings.Contains(out, exitedID) || !strings.Contains(out, "Total reclaimed space:") {
		t.Fatalf("prune until=1h: %q", out)
	}
	if r := docker(t, "container", "prune", "-f", "--filter", "nosuch=1"); r.code == 0 || !strings.Contains(r.stderr, "invalid filter 'nosuch'") {
		t.Fatalf("unknown filter: %s", r)
	}

	out = mustDocker(t, "container", "prune", "-f", "--filter", "label="+label)
	if !strings.HasPrefix(out, "Deleted Containers:\n") || !strings.Contains(out, exitedID) || !strings.Contains(out, createdID) {
		t.Fatalf("container prune: %q", out)
	}
	left := mustDocker(t, "ps", "-a", "--filter", "name="+base, "--format", "{{.Names}}")
	if strings.Contains(left, exited) || strings.Contains(left, created) || !strings.Contains(left, running) || !strings.Contains(left, other) {
		t.Fatalf("after prune: %q", left)
	}

	// system prune with the label, then berth's own command with label!.
	mustDocker(t, "stop", "-t", "0", running)
	out = mustDocker(t, "system", "prune", "-f", "--filter", "label="+label)
	if !strings.Contains(out, "Deleted Containers:") || docker(t, "inspect", running).code == 0 {
		t.Fatalf("system prune: %q", out)
	}
	mustDocker(t, "create", "--name", exited, "--label", label, busybox, "true")
	r := berth(t, "container", "prune", "-f", "--filter", "label!=berth.prune=someone-else", "--filter", "label=berth.prune")
	if r.code != 0 || !strings.Contains(r.stdout, "Deleted Containers:") {
		t.Fatalf("berth container prune: %s", r)
	}
	if docker(t, "inspect", exited).code == 0 || docker(t, "inspect", other).code != 0 {
		t.Fatal("berth container prune removed the wrong containers")
	}
}
