package integration

import (
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nodeTable is `docker node ls` as hostname → "STATUS AVAILABILITY MANAGERSTATUS".
func nodeTable(h *clusterHost) (map[string]string, string) {
	r := h.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}")
	if r.code != 0 {
		return nil, fmt.Sprintf("%s: node ls: %s", h.name, r)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		host, rest, _ := strings.Cut(line, " ")
		out[host] = strings.TrimSpace(rest)
	}
	return out, ""
}

// leaderOf returns the hostname of the leader as h sees it.
func leaderOf(h *clusterHost) string {
	tbl, _ := nodeTable(h)
	for host, st := range tbl {
		if strings.HasSuffix(st, "Leader") {
			return host
		}
	}
	return ""
}

func TestClusterMembershipAndFailover(t *testing.T) {
	c := newTestCluster(t, "m1", "m2", "m3", "w1", "w2", "w3")
	m1, m2, m3 := c.host("m1"), c.host("m2"), c.host("m3")
	w1, w2, w3 := c.host("w1"), c.host("w2"), c.host("w3")
	plainRSS := m1.rssKB()

	if got := m1.must("info", "--format", "{{.Swarm.LocalNodeState}}"); got != "inactive" {
		t.Fatalf("before init: swarm state %q", got)
	}
	if r := m1.docker("node", "ls"); r.code == 0 || !strings.Contains(r.stderr, `This node is not a swarm manager. Use "docker swarm init"`) {
		t.Fatalf("node ls outside a swarm: %s", r)
	}
	out := m1.must("swarm", "init", "--advertise-addr", m1.ip)
	if !strings.Contains(out, "Swarm initialized: current node") || !strings.Contains(out, m1.ip+":2377") {
		t.Fatalf("swarm init said: %s", out)
	}
	if r := m1.docker("swarm", "init", "--advertise-addr", m1.ip); r.code == 0 || !strings.Contains(r.stderr, "This node is already part of a swarm") {
		t.Fatalf("second init: %s", r)
	}
	managerToken := m1.must("swarm", "join-token", "-q", "manager")
	workerToken := m1.must("swarm", "join-token", "-q", "worker")
	if !strings.HasPrefix(workerToken, "SWMTKN-1-") || workerToken == managerToken {
		t.Fatalf("tokens: %q %q", workerToken, managerToken)
	}

	// A wrong secret is refused; so is a token of another cluster (its CA digest does not match).
	bad := workerToken[:len(workerToken)-5] + "zzzzz"
	if r := w3.docker("swarm", "join", "--token", bad, m1.ip+":2377"); r.code == 0 || !strings.Contains(r.stderr, "A valid join token is necessary to join this cluster") {
		t.Fatalf("join with a wrong token: %s", r)
	}
	foreign := "SWMTKN-1-" + strings.Repeat("1", 50) + workerToken[len(workerToken)-26:]
	if r := w3.docker("swarm", "join", "--token", foreign, m1.ip+":2377"); r.code == 0 || !strings.Contains(r.stderr, "remote CA does not match fingerprint") {
		t.Fatalf("join with another cluster's token: %s", r)
	}
	if got := w3.must("info", "--format", "{{.Swarm.LocalNodeState}}"); got != "inactive" {
		t.Fatalf("refused joiner's swarm state: %q", got)
	}

	for _, h := range []*clusterHost{m2, m3} {
		if out := h.must("swarm", "join", "--token", managerToken, m1.ip+":2377"); !strings.Contains(out, "joined a swarm as a manager") {
			t.Fatalf("%s join: %s", h.name, out)
		}
	}
	// Workers join through different managers, followers included.
	for i, h := range []*clusterHost{w1, w2, w3} {
		via := []*clusterHost{m1, m2, m3}[i]
		if out := h.must("swarm", "join", "--token", workerToken, via.ip); !strings.Contains(out, "joined a swarm as a worker") {
			t.Fatalf("%s join: %s", h.name, out)
		}
	}
	eventually(t, 10*time.Second, func() string {
		tbl, msg := nodeTable(m2)
		if msg != "" {
			return msg
		}
		var states []string
		leaders, reachable := 0, 0
		for host, st := range tbl {
			states = append(states, host+": "+st)
			if !strings.HasPrefix(st, "Ready Active") {
				return "not ready: " + host + " " + st
			}
			switch {
			case strings.HasSuffix(st, "Leader"):
				leaders++
			case strings.HasSuffix(st, "Reachable"):
				reachable++
			}
		}
		sort.Strings(states)
		if len(tbl) != 6 || leaders != 1 || reachable != 2 {
			return fmt.Sprintf("want 6 nodes, 1 leader, 2 reachable managers; got %v", states)
		}
		return ""
	})
	if got := m3.must("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.Managers}} {{.Swarm.Nodes}} {{.Swarm.NodeAddr}}"); got != "active true 3 6 "+m3.ip {
		t.Fatalf("manager's docker info: %q", got)
	}
	if got := w1.must("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{len .Swarm.RemoteManagers}}"); got != "active false 3" {
		t.Fatalf("worker's docker info: %q", got)
	}
	if r := w1.docker("node", "ls"); r.code == 0 || !strings.Contains(r.stderr, "Worker nodes can't be used to view or modify cluster state") {
		t.Fatalf("node ls on a worker: %s", r)
	}
	if got := m1.must("node", "inspect", "self", "--format", "{{.Description.Hostname}} {{.ManagerStatus.Addr}}"); got != "m1 "+m1.ip+":2377" {
		t.Fatalf("node inspect self: %q", got)
	}
	if got := m2.must("node", "ls", "-q", "--filter", "role=manager"); len(strings.Fields(got)) != 3 {
		t.Fatalf("role=manager filter: %q", got)
	}
	if idle := m1.rssKB(); plainRSS > 0 {
		t.Logf("berthd RSS: %d KiB before swarm init, %d KiB as the leader of 3 managers + 3 workers (+%d KiB)", plainRSS, idle, idle-plainRSS)
	}

	// Labels and availability, written on a follower.
	m3.must("node", "update", "--label-add", "zone=a", "--availability", "drain", "w1")
	if got := m3.must("node", "inspect", "w1", "--format", "{{.Spec.Availability}} {{.Spec.Labels}}"); got != "drain map[zone:a]" {
		t.Fatalf("after update: %q", got)
	}

	// kill -9 the leader: another manager leads and takes writes, and nothing committed is lost.
	leader := c.host(leaderOf(m1))
	var others []*clusterHost
	for _, h := range []*clusterHost{m1, m2, m3} {
		if h != leader {
			others = append(others, h)
		}
	}
	start := time.Now()
	leader.kill(syscall.SIGKILL)
	eventually(t, 15*time.Second, func() string {
		if r := others[0].docker("node", "update", "--label-add", "after=failover", "w2"); r.code != 0 {
			return r.String()
		}
		return ""
	})
	t.Logf("leader failover (kill -9 → a write accepted): %s", time.Since(start).Round(time.Millisecond))
	eventually(t, 5*time.Second, func() string {
		if l := leaderOf(others[1]); l == "" || l == leader.name {
			return fmt.Sprintf("leader after failover: %q (old %s)", l, leader.name)
		}
		return ""
	})
	if got := others[1].must("node", "inspect", "w1", "--format", "{{.Spec.Availability}} {{.Spec.Labels}}"); got != "drain map[zone:a]" {
		t.Fatalf("w1 after failover: %q", got)
	}
	eventually(t, 10*time.Second, func() string {
		tbl, msg := nodeTable(others[1])
		if msg != "" {
			return msg
		}
		if st := tbl[leader.name]; st != "Down Active Unreachable" {
			return "killed leader shows " + st
		}
		return ""
	})

	// The killed manager comes back from its own state and catches up.
	leader.restart()
	eventually(t, 30*time.Second, func() string {
		r := leader.docker("node", "inspect", "w2", "--format", "{{index .Spec.Labels \"after\"}}")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "failover" {
			return "restarted manager does not see the write made while it was down: " + r.String()
		}
		tbl, msg := nodeTable(others[0])
		if msg != "" {
			return msg
		}
		if st := tbl[leader.name]; st != "Ready Active Reachable" {
			return "restarted manager shows " + st
		}
		return ""
	})

	// A worker that dies is marked down.
	w3.kill(syscall.SIGKILL)
	eventually(t, 15*time.Second, func() string {
		tbl, msg := nodeTable(m1)
		if msg != "" {
			return msg
		}
		if st := tbl["w3"]; !strings.HasPrefix(st, "Down") {
			return "dead worker shows " + st
		}
		return ""
	})
	// ... and ready again once restarted: a worker resumes its session from its own state.
	w3.restart()
	eventually(t, 15*time.Second, func() string {
		if tbl, _ := nodeTable(m2); !strings.HasPrefix(tbl["w3"], "Ready") {
			return "restarted worker shows " + tbl["w3"]
		}
		return ""
	})

	// Every manager restarts; the state is still there.
	for _, h := range []*clusterHost{m1, m2, m3} {
		h.kill(syscall.SIGTERM)
	}
	for _, h := range []*clusterHost{m1, m2, m3} {
		h.start()
	}
	for _, h := range []*clusterHost{m1, m2, m3} {
		h.waitUp()
	}
	eventually(t, 30*time.Second, func() string {
		r := m2.docker("node", "inspect", "w1", "--format", "{{.Spec.Availability}} {{.Spec.Labels}}")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "drain map[zone:a]" {
			return "after restarting every manager: " + r.String()
		}
		if leaderOf(m2) == "" {
			return "no leader after restarting every manager"
		}
		return ""
	})

	// Removal rules: a manager must be demoted first, a live node needs --force, a dead one does not. A
	// removed node's heartbeats are refused.
	if r := m1.docker("node", "rm", "m2"); r.code == 0 || !strings.Contains(r.stderr, "must be demoted to worker before removal") {
		t.Fatalf("rm of a manager: %s", r)
	}
	if r := m1.docker("node", "rm", "w1"); r.code == 0 || !strings.Contains(r.stderr, "is not down and can't be removed") {
		t.Fatalf("rm of a live worker: %s", r)
	}
	m1.must("node", "rm", "--force", "w3")
	eventually(t, 10*time.Second, func() string {
		if got := w3.must("info", "--format", "{{.Swarm.Error}}"); !strings.Contains(got, "removed") {
			return "a removed worker's info error: " + got
		}
		return ""
	})
	if r := m2.docker("swarm", "leave"); r.code == 0 || !strings.Contains(r.stderr, "participating as a manager") {
		t.Fatalf("manager leave without --force: %s", r)
	}
	if out := w2.must("swarm", "leave"); !strings.Contains(out, "Node left the swarm") {
		t.Fatalf("worker leave: %s", out)
	}
	if got := w2.must("info", "--format", "{{.Swarm.LocalNodeState}}"); got != "inactive" {
		t.Fatalf("after leave: %q", got)
	}
	eventually(t, 10*time.Second, func() string {
		tbl, msg := nodeTable(m3)
		if msg != "" {
			return msg
		}
		if st := tbl["w2"]; !strings.HasPrefix(st, "Down") {
			return "left worker shows " + st
		}
		if _, ok := tbl["w3"]; ok {
			return "removed w3 still listed"
		}
		return ""
	})
	m1.must("node", "rm", "w2")

	// Promote and demote: the node changes its certificate and whether it runs raft.
	m1.must("node", "promote", "w1")
	eventually(t, 15*time.Second, func() string {
		if got := strings.TrimSpace(w1.docker("info", "--format", "{{.Swarm.ControlAvailable}}").stdout); got != "true" {
			return "promoted worker is not a manager: " + got
		}
		if tbl, _ := nodeTable(m2); tbl["w1"] != "Ready Drain Reachable" {
			return "promoted w1 shows " + tbl["w1"]
		}
		return ""
	})
	m2.must("node", "demote", "w1")
	eventually(t, 15*time.Second, func() string {
		if got := strings.TrimSpace(w1.docker("info", "--format", "{{.Swarm.ControlAvailable}} {{.Swarm.LocalNodeState}}").stdout); got != "false active" {
			return "demoted manager: " + got
		}
		if tbl, _ := nodeTable(m2); tbl["w1"] != "Ready Drain" {
			return "demoted w1 shows " + tbl["w1"]
		}
		return ""
	})

	// A manager that leaves with --force is taken out of raft; the other two go on.
	if out := m3.must("swarm", "leave", "--force"); !strings.Contains(out, "Node left the swarm") {
		t.Fatalf("manager leave --force: %s", out)
	}
	eventually(t, 10*time.Second, func() string {
		if got := strings.TrimSpace(m1.docker("info", "--format", "{{.Swarm.Managers}}").stdout); got != "2" {
			return "managers after one left: " + got
		}
		if tbl, _ := nodeTable(m1); !strings.HasPrefix(tbl["m3"], "Down") || strings.HasSuffix(tbl["m3"], "Reachable") {
			return "left manager shows " + tbl["m3"]
		}
		return ""
	})
	m2.must("node", "update", "--label-add", "managers=2", "w1")
}

// TestClusterLastManager checks what the last manager refuses, and that berth's own commands work.
func TestClusterLastManager(t *testing.T) {
	c := newTestCluster(t, "solo")
	h := c.host("solo")
	if r := h.berth("swarm", "init", "--advertise-addr", h.ip); r.code != 0 || !strings.Contains(r.stdout, "Swarm initialized") {
		t.Fatalf("berth swarm init: %s", r)
	}
	if r := h.berth("node", "ls"); r.code != 0 || !strings.Contains(r.stdout, "solo") || !strings.Contains(r.stdout, "Leader") {
		t.Fatalf("berth node ls: %s", r)
	}
	tok := h.berth("swarm", "join-token", "-q", "worker")
	if tok.code != 0 || !strings.HasPrefix(tok.stdout, "SWMTKN-1-") {
		t.Fatalf("berth swarm join-token: %s", tok)
	}
	rot := h.berth("swarm", "join-token", "--rotate", "-q", "worker")
	if rot.code != 0 || rot.stdout == tok.stdout {
		t.Fatalf("berth swarm join-token --rotate: %s (old %s)", rot, tok.stdout)
	}
	if r := h.docker("node", "demote", "solo"); r.code == 0 || !strings.Contains(r.stderr, "attempting to demote the last manager of the swarm") {
		t.Fatalf("demote the last manager: %s", r)
	}
	if r := h.docker("swarm", "leave"); r.code == 0 || !strings.Contains(r.stderr, "Removing the last manager erases all current state of the swarm") {
		t.Fatalf("leave as the last manager: %s", r)
	}
	if r := h.berth("node", "update", "--label-add", "a=b", "solo"); r.code != 0 {
		t.Fatalf("berth node update: %s", r)
	}
	if got := h.must("node", "inspect", "solo", "--format", "{{.Spec.Labels}}"); got != "map[a:b]" {
		t.Fatalf("labels: %q", got)
	}
	if r := h.berth("swarm", "leave", "--force"); r.code != 0 {
		t.Fatalf("berth swarm leave --force: %s", r)
	}
	if got := h.must("info", "--format", "{{.Swarm.LocalNodeState}}"); got != "inactive" {
		t.Fatalf("after leave: %q", got)
	}
}
