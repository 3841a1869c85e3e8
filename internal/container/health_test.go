package container

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestNextHealth(t *testing.T) {
	ok := &container.HealthcheckResult{ExitCode: 0}
	fail := &container.HealthcheckResult{ExitCode: 1}
	steps := []struct {
		res         *container.HealthcheckResult
		startPeriod bool
		want        string
		streak      int
	}{
		{fail, true, container.Starting, 0}, // start period: failures do not count
		{fail, true, container.Starting, 0},
		{fail, false, container.Starting, 1},
		{ok, false, container.Healthy, 0},
		{fail, true, container.Healthy, 1}, // once healthy, the start period no longer excuses
		{fail, false, container.Healthy, 2},
		{fail, false, container.Unhealthy, 3},
		{fail, false, container.Unhealthy, 4},
		{ok, false, container.Healthy, 0},
	}
	h := &container.Health{Status: container.Starting}
	for i, st := range steps {
		prev := h
		prevLog := len(prev.Log)
		h = nextHealth(h, st.res, 3, st.startPeriod)
		if h.Status != st.want || h.FailingStreak != st.streak {
			t.Fatalf("step %d: got %s/%d, want %s/%d", i, h.Status, h.FailingStreak, st.want, st.streak)
		}
		if len(prev.Log) != prevLog {
			t.Fatalf("step %d modified the previous value", i)
		}
		if len(h.Log) > maxHealthLog || h.Log[len(h.Log)-1] != st.res {
			t.Fatalf("step %d: log %v", i, h.Log)
		}
	}
}

func TestCappedBuffer(t *testing.T) {
	b := &cappedBuffer{max: 5}
	for _, s := range []string{"abc", "defg", "hij"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if b.String() != "abcde" {
		t.Fatalf("kept %q", b.String())
	}
}

func TestHealthcheckOf(t *testing.T) {
	for _, tc := range []struct {
		test []string
		on   bool
	}{{nil, false}, {[]string{"NONE"}, false}, {[]string{"CMD", "true"}, true}, {[]string{"CMD-SHELL", "true"}, true}} {
		cfg := &container.Config{Healthcheck: &container.HealthConfig{Test: tc.test}}
		if got := healthcheckOf(cfg) != nil; got != tc.on {
			t.Errorf("%s: %v", strings.Join(tc.test, " "), got)
		}
	}
}
