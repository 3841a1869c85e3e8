package container

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

func TestPolicyWants(t *testing.T) {
	pol := func(name string, max int) container.RestartPolicy {
		return container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: max}
	}
	cases := []struct {
		name     string
		p        container.RestartPolicy
		code, n  int
		stopped  bool
		restarts bool
	}{
		{"no", pol("no", 0), 1, 0, false, false},
		{"empty", pol("", 0), 1, 0, false, false},
		{"always on success", pol("always", 0), 0, 5, false, true},
		{"always after a stop (daemon restart)", pol("always", 0), 0, 0, true, true},
		{"unless-stopped", pol("unless-stopped", 0), 0, 0, false, true},
		{"unless-stopped stopped", pol("unless-stopped", 0), 0, 0, true, false},
		{"on-failure success", pol("on-failure", 0), 0, 0, false, false},
		{"on-failure failure", pol("on-failure", 0), 2, 100, false, true},
		{"on-failure under max", pol("on-failure", 3), 2, 2, false, true},
		{"on-failure at max", pol("on-failure", 3), 2, 3, false, false},
		{"on-failure stopped", pol("on-failure", 0), 137, 0, true, false},
	}
	for _, tc := range cases {
		if got := policyWants(tc.p, tc.code, tc.n, tc.stopped); got != tc.restarts {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestBackoff(t *testing.T) {
	c := &ctr{}
	var got []time.Duration
	for i := 0; i < 12; i++ {
		got = append(got, c.nextBackoff(time.Second))
	}
	want := []time.Duration{100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("backoff %d = %v, want %v (all: %v)", i, got[i], want[i]*time.Millisecond, got)
		}
	}
	if d := c.nextBackoff(10 * time.Second); d != 100*time.Millisecond {
		t.Errorf("a 10 s run did not reset the backoff: %v", d)
	}
}

func TestStatusTextPausedRestarting(t *testing.T) {
	now := time.Now()
	if got := statusText(state{Status: "running", Paused: true, StartedAt: now.Add(-time.Minute)}, now); got != "Up About a minute (Paused)" {
		t.Errorf("paused: %q", got)
	}
	if got := statusText(state{Status: "restarting", ExitCode: 3, FinishedAt: now.Add(-2 * time.Second)}, now); got != "Restarting (3) 2 seconds ago" {
		t.Errorf("restarting: %q", got)
	}
	if st := (state{Status: "running", Paused: true}).status(); st != "paused" {
		t.Errorf("status %q", st)
	}
}

func TestParsePS(t *testing.T) {
	out := []byte("UID          PID    PPID  C STIME TTY          TIME CMD\n" +
		"root           1       0  0 10:00 ?        00:00:01 /sbin/init splash\n" +
		"root         412       1  0 10:01 ?        00:00:00 sh -c while true; do sleep 1; done\n" +
		"root         413     412  0 10:01 ?        00:00:00 sleep 1\n")
	resp, err := parsePS(out, []int{412, 413})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(resp.Titles, ",") != "UID,PID,PPID,C,STIME,TTY,TIME,CMD" || len(resp.Processes) != 2 {
		t.Fatalf("%+v", resp)
	}
	if cmd := resp.Processes[0][7]; cmd != "sh -c while true; do sleep 1; done" {
		t.Errorf("command column: %q", cmd)
	}
	if _, err := parsePS([]byte("USER COMMAND\nroot sh\n"), []int{1}); err == nil || !strings.Contains(err.Error(), "PID field") {
		t.Errorf("missing PID column: %v", err)
	}
}

func TestLinuxResourcesOnlyChanged(t *testing.T) {
	pids := int64(20)
	in := container.Resources{Memory: 64 << 20, PidsLimit: &pids}
	all := container.Resources{Memory: 64 << 20, PidsLimit: &pids, CPUShares: 512}
	r := linuxResources(in, all)
	if r.Memory == nil || *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 {
		t.Errorf("memory %+v", r.Memory)
	}
	if r.CPU != nil {
		t.Errorf("unchanged CPU written: %+v", r.CPU)
	}
	if r.Pids == nil || r.Pids.Limit != 20 {
		t.Errorf("pids %+v", r.Pids)
	}
	r = linuxResources(container.Resources{NanoCPUs: 5e8}, container.Resources{NanoCPUs: 5e8})
	if r.CPU == nil || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 || r.Memory != nil {
		t.Errorf("cpus: %+v", r)
	}
}

func TestShouldCancelOnKill(t *testing.T) {
	if !shouldCancelOnKill(9, "SIGUSR1") || !shouldCancelOnKill(15, "") || !shouldCancelOnKill(10, "SIGUSR1") || shouldCancelOnKill(1, "SIGUSR1") {
		t.Errorf("kill cancel rules")
	}
}
