package integration

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestEventsSinceUntil runs a container's whole life and an image tag, then reads them back from the
// daemon's recorded events with --since/--until and filters.
func TestEventsSinceUntil(t *testing.T) {
	name := uniqueName(t)
	tag := "evtest:" + strings.ReplaceAll(name, "-", "")
	rmOnCleanup(t, name)
	t.Cleanup(func() { _ = dockerCmd("rmi", tag).Run() })
	since := fmt.Sprintf("%d", time.Now().Add(-time.Second).Unix())
	id := mustDocker(t, "create", "--name", name, "--label", "team=berth", busybox, "sh", "-c", "exit 3")
	mustDocker(t, "start", name)
	mustDocker(t, "wait", name)
	mustDocker(t, "rename", name, name+"-new")
	mustDocker(t, "rm", name+"-new")
	mustDocker(t, "tag", busybox, tag)
	mustDocker(t, "rmi", tag)
	until := fmt.Sprintf("%d", time.Now().Add(time.Second).Unix())
	time.Sleep(1100 * time.Millisecond) // until must be in the past for a replay that ends by itself

	out := mustDocker(t, "events", "--since", since, "--until", until, "--filter", "container="+id, "--format", "{{.Type}} {{.Action}} {{index .Actor.Attributes \"exitCode\"}}")
	want := "container create \ncontainer start \ncontainer die 3\ncontainer rename \ncontainer destroy "
	if out != strings.TrimSpace(want) {
		t.Errorf("container events:\n%s\nwant:\n%s", out, want)
	}
	out = mustDocker(t, "events", "--since", since, "--until", until, "--filter", "type=image", "--filter", "image="+tag, "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	if !strings.Contains(out, "tag "+tag) || !strings.Contains(out, "untag "+tag) {
		t.Errorf("image events: %q", out)
	}
	// Docker's default line: time, type, action, actor, sorted attributes (labels included).
	out = mustDocker(t, "events", "--since", since, "--until", until, "--filter", "container="+id, "--filter", "event=die")
	if !strings.Contains(out, " container die "+id+" (exitCode=3, image="+busybox+", name="+name+", team=berth)") {
		t.Errorf("default format: %q", out)
	}
	if r := berth(t, "events", "--since", since, "--until", until, "--filter", "label=team=berth", "--format", "{{.Action}}"); r.code != 0 || strings.Fields(r.stdout)[0] != "create" {
		t.Errorf("berth events: %s", r)
	}
	if r := docker(t, "events", "--filter", "bogus=1", "--until", until); r.code == 0 || !strings.Contains(r.stderr, "invalid filter 'bogus'") {
		t.Errorf("bad filter: %s", r)
	}
}

// TestEventsStream follows events live while a container runs, pauses and stops.
func TestEventsStream(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	cmd := dockerCmd("events", "--filter", "container="+name, "--format", "{{.Action}}")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(300 * time.Millisecond) // the subscription is in place once the CLI has its header
	mustDocker(t, "run", "-d", "--name", name, busybox, "sleep", "1000")
	mustDocker(t, "pause", name)
	mustDocker(t, "unpause", name)
	mustDocker(t, "kill", name)
	want := []string{"create", "start", "pause", "unpause", "kill", "die"}
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < len(want) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("events stream ended: %v", got)
			}
			got = append(got, l)
		case <-timeout:
			t.Fatalf("events so far %v, want %v", got, want)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("events %v, want %v", got, want)
	}
}
