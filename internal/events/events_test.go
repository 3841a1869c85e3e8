package events

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

func collect(t *testing.T, b *Bus, opts StreamOptions) []events.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var got []events.Message
	if err := b.Stream(ctx, opts, func(m events.Message) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func actions(ms []events.Message) string {
	s := ""
	for _, m := range ms {
		s += string(m.Action) + " "
	}
	return s
}

func TestReplayWindow(t *testing.T) {
	b := New(0)
	start := time.Now()
	b.Log(events.ContainerEventType, "create", "c1", map[string]string{"name": "one", "image": "busybox"})
	b.Log(events.ContainerEventType, "start", "c1", map[string]string{"name": "one", "image": "busybox"})
	mid := time.Now()
	time.Sleep(time.Millisecond)
	b.Log(events.ImageEventType, "tag", "sha256:abc", map[string]string{"name": "busybox:v1"})
	end := time.Now()

	cases := []struct {
		name string
		opts StreamOptions
		want string
	}{
		{"since start until end", StreamOptions{Since: start, Until: end}, "create start tag "},
		{"until mid", StreamOptions{Until: mid}, "create start "},
		{"since mid", StreamOptions{Since: mid, Until: end}, "tag "},
		{"type filter", StreamOptions{Since: start, Until: end, Filters: filters.NewArgs(filters.Arg("type", "image"))}, "tag "},
		{"event filter", StreamOptions{Since: start, Until: end, Filters: filters.NewArgs(filters.Arg("event", "start"))}, "start "},
		{"container by name excludes images", StreamOptions{Since: start, Until: end, Filters: filters.NewArgs(filters.Arg("container", "one"))}, "create start "},
		{"container by id prefix", StreamOptions{Since: start, Until: end, Filters: filters.NewArgs(filters.Arg("container", "c"))}, "create start "},
		{"image of container and image events", StreamOptions{Since: start, Until: end, Filters: filters.NewArgs(filters.Arg("image", "busybox"))}, "create start tag "},
	}
	for _, tc := range cases {
		if got := actions(collect(t, b, tc.opts)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestMessageShape(t *testing.T) {
	b := New(0)
	b.Log(events.ContainerEventType, "die", "c1", map[string]string{"exitCode": "3", "image": "busybox"})
	past, _, cancel := b.Subscribe()
	cancel()
	m := past[0]
	if m.Scope != "local" || m.TimeNano == 0 || m.Time != m.TimeNano/1e9 || m.Status != "die" || m.ID != "c1" || m.From != "busybox" {
		t.Errorf("message %+v", m)
	}
}

func TestLiveAndUntil(t *testing.T) {
	b := New(0)
	until := time.Now().Add(300 * time.Millisecond)
	go func() {
		time.Sleep(50 * time.Millisecond)
		b.Log(events.ContainerEventType, "start", "c1", nil)
	}()
	t0 := time.Now()
	got := collect(t, b, StreamOptions{Until: until})
	if actions(got) != "start " {
		t.Errorf("live events: %q", actions(got))
	}
	if time.Since(t0) < 250*time.Millisecond {
		t.Errorf("stream ended before until")
	}
}

func TestRingIsBounded(t *testing.T) {
	b := New(3)
	for i := 0; i < 5; i++ {
		b.Log(events.ContainerEventType, "start", "c", nil)
	}
	past, _, cancel := b.Subscribe()
	cancel()
	if len(past) != 3 {
		t.Fatalf("ring holds %d", len(past))
	}
	for i := 1; i < len(past); i++ {
		if past[i].TimeNano <= past[i-1].TimeNano {
			t.Errorf("timestamps not increasing")
		}
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	b := New(0)
	_, live, cancel := b.Subscribe()
	defer cancel()
	for i := 0; i < subscriberBuffer+1; i++ {
		b.Log(events.ContainerEventType, "start", "c", nil)
	}
	n := 0
	for range live {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("got %d before the drop", n)
	}
}

func TestParse(t *testing.T) {
	if tm, err := ParseTime("1700000000.5"); err != nil || !tm.Equal(time.Unix(1700000000, 5e8)) {
		t.Errorf("ParseTime: %v %v", tm, err)
	}
	if _, err := ParseStreamOptions("", "", filters.NewArgs(filters.Arg("bogus", "x"))); err == nil {
		t.Errorf("unknown filter accepted")
	}
	if _, err := ParseStreamOptions("yesterday", "", filters.NewArgs()); err == nil {
		t.Errorf("bad since accepted")
	}
	if got := stripTag("localhost:5000/img:v1"); got != "localhost:5000/img" {
		t.Errorf("stripTag: %q", got)
	}
	if got := stripTag("localhost:5000/img"); got != "localhost:5000/img" {
		t.Errorf("stripTag port: %q", got)
	}
}

func TestExecActionMatchesBase(t *testing.T) {
	m := events.Message{Type: events.ContainerEventType, Action: "exec_start: sh -c true", Actor: events.Actor{ID: "c1"}}
	if !Match(m, filters.NewArgs(filters.Arg("event", "exec_start"))) {
		t.Errorf("exec_start filter did not match")
	}
	if Match(m, filters.NewArgs(filters.Arg("event", "start"))) {
		t.Errorf("start matched exec_start")
	}
}
