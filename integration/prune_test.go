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
	t.Logf("docker system prune:\n%s", out)
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

// TestBuilderPruneFilters: docker builder prune's until, label and keep-storage select cache entries
// by when a build last used them and by size, least recently used first.
func TestBuilderPruneFilters(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag+":old", tag+":new")
	// Two builds with a 1 MiB step each, the "old" one first.
	old := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN head -c 1048576 /dev/zero > /old\n"})
	recent := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN head -c 1048576 /dev/zero > /new\n"})
	build := func(dir, ref string) result {
		r := legacyBuild(t, dir, "-t", ref, ".")
		if r.code != 0 {
			t.Fatalf("build %s: %s", ref, r)
		}
		return r
	}
	build(old, tag+":old")
	build(recent, tag+":new")
	cached := func(dir, ref string) bool { return strings.Contains(build(dir, ref).stdout, "Using cache") }

	// Used within the hour: until=1h spares them; a label selects nothing, since entries have none.
	mustDocker(t, "builder", "prune", "-f", "--filter", "until=1h")
	mustDocker(t, "builder", "prune", "-f", "--filter", "label=berth.nosuch=1")
	if !cached(old, tag+":old") || !cached(recent, tag+":new") {
		t.Fatal("builder prune with until=1h or a label removed recent cache")
	}
	if r := docker(t, "builder", "prune", "-f", "--filter", "type=regular"); r.code == 0 || !strings.Contains(r.stderr, "invalid filter 'type'") {
		t.Fatalf("unknown filter: %s", r)
	}
	// keep-storage 1.5 MiB keeps the most recently used 1 MiB step (the "new" build), not the other.
	build(old, tag+":old")
	build(recent, tag+":new")
	out := mustDocker(t, "builder", "prune", "-f", "--keep-storage", "1572864")
	if !strings.Contains(out, "Deleted build cache objects:") {
		t.Fatalf("keep-storage prune: %q", out)
	}
	if !cached(recent, tag+":new") {
		t.Error("keep-storage dropped the most recently used entry")
	}
	if cached(old, tag+":old") {
		t.Error("keep-storage kept the least recently used entry beyond the limit")
	}
	r := berth(t, "builder", "prune", "-f", "--all")
	if r.code != 0 || cached(recent, tag+":new") {
		t.Fatalf("berth builder prune --all left cache: %s", r)
	}
}
