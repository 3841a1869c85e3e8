package executor

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"
)

// scripted is a controller whose steps return what the test says and record that they ran.
type scripted struct {
	prepare, start, wait, shutdown error
	calls                          []string
}

func (s *scripted) Prepare(context.Context) error {
	s.calls = append(s.calls, "prepare")
	return s.prepare
}
func (s *scripted) Start(context.Context) error { s.calls = append(s.calls, "start"); return s.start }
func (s *scripted) Wait(context.Context) error  { s.calls = append(s.calls, "wait"); return s.wait }
func (s *scripted) Shutdown(context.Context) error {
	s.calls = append(s.calls, "shutdown")
	return s.shutdown
}
func (s *scripted) Observe(context.Context) (*swarm.ContainerStatus, *swarm.PortStatus) {
	return &swarm.ContainerStatus{ContainerID: "c1", PID: 42}, nil
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func clock() time.Time { return epoch }

func TestStep(t *testing.T) {
	boom := errors.New("No such image: nosuch:latest")
	cases := []struct {
		name     string
		from     swarm.TaskState
		desired  swarm.TaskState
		ctl      scripted
		want     swarm.TaskState
		msg, err string
		calls    []string
		exit     int
		noop     bool
	}{
		{name: "assigned accepts", from: swarm.TaskStateAssigned, desired: swarm.TaskStateRunning, want: swarm.TaskStateAccepted, msg: "accepted"},
		{name: "new accepts", from: "", desired: swarm.TaskStateRunning, want: swarm.TaskStateAccepted, msg: "accepted"},
		{name: "accepted prepares", from: swarm.TaskStateAccepted, desired: swarm.TaskStateRunning, want: swarm.TaskStatePreparing, msg: "preparing"},
		{name: "preparing creates", from: swarm.TaskStatePreparing, desired: swarm.TaskStateRunning, want: swarm.TaskStateReady, msg: "prepared", calls: []string{"prepare"}},
		{name: "prepare failure rejects", from: swarm.TaskStatePreparing, desired: swarm.TaskStateRunning, ctl: scripted{prepare: boom},
			want: swarm.TaskStateRejected, err: boom.Error(), calls: []string{"prepare"}},
		{name: "ready starts", from: swarm.TaskStateReady, desired: swarm.TaskStateRunning, want: swarm.TaskStateStarting, msg: "starting"},
		{name: "starting runs", from: swarm.TaskStateStarting, desired: swarm.TaskStateRunning, want: swarm.TaskStateRunning, msg: "started", calls: []string{"start"}},
		{name: "start failure fails", from: swarm.TaskStateStarting, desired: swarm.TaskStateRunning, ctl: scripted{start: &ExitError{Code: 137, Cause: ErrUnhealthy}},
			want: swarm.TaskStateFailed, err: "task: non-zero exit (137): unhealthy container", calls: []string{"start"}, exit: 137},
		{name: "exit 0 completes", from: swarm.TaskStateRunning, desired: swarm.TaskStateRunning, want: swarm.TaskStateComplete, msg: "finished", calls: []string{"wait"}},
		{name: "exit 3 fails", from: swarm.TaskStateRunning, desired: swarm.TaskStateRunning, ctl: scripted{wait: &ExitError{Code: 3}},
			want: swarm.TaskStateFailed, err: "task: non-zero exit (3)", calls: []string{"wait"}, exit: 3},
		{name: "shutdown stops a running task", from: swarm.TaskStateRunning, desired: swarm.TaskStateShutdown, want: swarm.TaskStateShutdown, msg: "shutdown", calls: []string{"shutdown"}},
		{name: "remove stops a running task", from: swarm.TaskStateRunning, desired: swarm.TaskStateRemove, want: swarm.TaskStateShutdown, msg: "shutdown", calls: []string{"shutdown"}},
		{name: "shutdown before start", from: swarm.TaskStateAssigned, desired: swarm.TaskStateShutdown, want: swarm.TaskStateShutdown, msg: "shutdown", calls: []string{"shutdown"}},
		{name: "desired ready stops at ready", from: swarm.TaskStateReady, desired: swarm.TaskStateReady, noop: true},
		{name: "complete is final", from: swarm.TaskStateComplete, desired: swarm.TaskStateShutdown, noop: true},
		{name: "failed is final", from: swarm.TaskStateFailed, desired: swarm.TaskStateRunning, noop: true},
		{name: "rejected is final", from: swarm.TaskStateRejected, desired: swarm.TaskStateShutdown, noop: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctl := tc.ctl
			got, err := step(context.Background(), swarm.TaskStatus{State: tc.from}, tc.desired, &ctl, clock)
			if tc.noop {
				if !errors.Is(err, errNoop) {
					t.Fatalf("want no transition, got %v %+v", err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.want || got.Err != tc.err || (tc.msg != "" && got.Message != tc.msg) {
				t.Fatalf("got state %q message %q err %q, want %q %q %q", got.State, got.Message, got.Err, tc.want, tc.msg, tc.err)
			}
			if !got.Timestamp.Equal(epoch) {
				t.Errorf("timestamp %v", got.Timestamp)
			}
			if len(ctl.calls) != len(tc.calls) || (len(tc.calls) > 0 && ctl.calls[0] != tc.calls[0]) {
				t.Errorf("calls %v, want %v", ctl.calls, tc.calls)
			}
			if tc.exit != 0 && (got.ContainerStatus == nil || got.ContainerStatus.ExitCode != tc.exit || got.ContainerStatus.ContainerID != "c1") {
				t.Errorf("container status %+v, want exit %d of c1", got.ContainerStatus, tc.exit)
			}
		})
	}
}

// A full run from assigned to complete passes every state in Docker's order.
func TestStepProgression(t *testing.T) {
	var ctl scripted
	st := swarm.TaskStatus{State: swarm.TaskStateAssigned}
	var seen []swarm.TaskState
	for i := 0; i < 20; i++ {
		next, err := step(context.Background(), st, swarm.TaskStateRunning, &ctl, clock)
		if errors.Is(err, errNoop) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, next.State)
		st = next
	}
	want := []swarm.TaskState{swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady,
		swarm.TaskStateStarting, swarm.TaskStateRunning, swarm.TaskStateComplete}
	if len(seen) != len(want) {
		t.Fatalf("states %v, want %v", seen, want)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Fatalf("states %v, want %v", seen, want)
		}
	}
}

// A step whose context ends (the desired state moved) is retried, not turned into a failure.
func TestStepInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ctl := scripted{wait: context.Canceled}
	st := swarm.TaskStatus{State: swarm.TaskStateRunning}
	got, err := step(ctx, st, swarm.TaskStateRunning, &ctl, clock)
	if !errors.Is(err, context.Canceled) || got.State != swarm.TaskStateRunning {
		t.Fatalf("got %v %q, want the context's error and the state unchanged", err, got.State)
	}
}

func TestTerminal(t *testing.T) {
	for s, want := range map[swarm.TaskState]bool{
		swarm.TaskStateRunning: false, swarm.TaskStateStarting: false, swarm.TaskStateComplete: true,
		swarm.TaskStateShutdown: true, swarm.TaskStateFailed: true, swarm.TaskStateRejected: true, "": false,
	} {
		if Terminal(s) != want {
			t.Errorf("Terminal(%q) = %v", s, !want)
		}
	}
}
