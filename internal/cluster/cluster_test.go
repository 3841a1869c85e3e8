package cluster

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// freeAddr returns a loopback address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type testNode struct {
	s    *Service
	root string
	addr string
}

func newNode(t *testing.T, name string) *testNode {
	n := &testNode{root: filepath.Join(t.TempDir(), name, "swarm"), addr: freeAddr(t)}
	n.open(name)
	return n
}

func (n *testNode) open(name string) {
	n.s = New(Config{Root: n.root, Description: func() NodeDescription { return NodeDescription{Hostname: name} }})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestThreeManagersFailover(t *testing.T) {
	ctx := context.Background()
	var nodes []*testNode
	for _, name := range []string{"a", "b", "c"} {
		n := newNode(t, name)
		nodes = append(nodes, n)
		t.Cleanup(n.s.Close)
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	if _, err := a.s.Init(ctx, swarm.InitRequest{ListenAddr: a.addr, AdvertiseAddr: a.addr}); err != nil {
		t.Fatal(err)
	}
	sw, err := a.s.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A wrong secret is refused with Docker's words, and the joiner stays out.
	bad := sw.JoinTokens.Manager[:len(sw.JoinTokens.Manager)-3] + "zzz"
	err = b.s.Join(ctx, swarm.JoinRequest{ListenAddr: b.addr, AdvertiseAddr: b.addr, RemoteAddrs: []string{a.addr}, JoinToken: bad})
	if err == nil || !strings.Contains(err.Error(), "A valid join token is necessary") || !errdefs.IsInvalidParameter(err) {
		t.Fatalf("join with a wrong token: %v", err)
	}
	if b.s.Info(ctx).LocalNodeState != swarm.LocalNodeStateInactive {
		t.Fatal("refused joiner is not inactive")
	}
	for _, n := range []*testNode{b, c} {
		if err := n.s.Join(ctx, swarm.JoinRequest{ListenAddr: n.addr, AdvertiseAddr: n.addr, RemoteAddrs: []string{a.addr}, JoinToken: sw.JoinTokens.Manager}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.s.Nodes(ctx, filters.NewArgs(filters.Arg("role", "manager")))
	if err != nil || len(list) != 3 {
		t.Fatalf("managers: %d %v", len(list), err)
	}
	if info := b.s.Info(ctx); !info.ControlAvailable || info.Managers != 3 || info.Nodes != 3 {
		t.Fatalf("info: %+v", info)
	}

	// Stop the leader: it hands over, another accepts writes, and the old one comes back from disk.
	if !a.s.mgr.isLeader() {
		t.Fatal("the initial manager does not lead")
	}
	a.s.Close()
	start := time.Now()
	waitFor(t, 5*time.Second, "a write after failover", func() bool {
		node, err := b.s.Node(ctx, "c")
		if err != nil {
			return false
		}
		node.Spec.Labels = map[string]string{"after": "failover"}
		return b.s.UpdateNode(ctx, node.ID, node.Version.Index, node.Spec) == nil
	})
	t.Logf("a write after the leader stopped cleanly (leadership handed over): %s", time.Since(start))
	a.open("a")
	if err := a.s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.s.Close)
	waitFor(t, 20*time.Second, "the restarted manager to catch up", func() bool {
		node, err := a.s.Node(ctx, "c")
		return err == nil && node.Spec.Labels["after"] == "failover"
	})

	// Stale versions are refused; the last manager cannot be demoted.
	node, _ := c.s.Node(ctx, "c")
	if err := c.s.UpdateNode(ctx, "c", node.Version.Index-1, node.Spec); err == nil || !strings.Contains(err.Error(), "update out of sequence") {
		t.Fatalf("stale update: %v", err)
	}
	if err := c.s.RemoveNode(ctx, "b", true); err == nil || !strings.Contains(err.Error(), "must be demoted") {
		t.Fatalf("removing a manager: %v", err)
	}
}

func TestInactiveAndWorkerErrors(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "x")
	if _, err := n.s.Nodes(ctx, filters.NewArgs()); err != ErrNoSwarm {
		t.Fatalf("nodes outside a swarm: %v", err)
	}
	if err := n.s.Leave(ctx, false); err != ErrNotInSwarm {
		t.Fatalf("leave outside a swarm: %v", err)
	}
	if _, err := n.s.Init(ctx, swarm.InitRequest{ListenAddr: n.addr, AdvertiseAddr: "0.0.0.0"}); err == nil {
		t.Fatal("init with an unspecified advertise address")
	}
	if _, err := n.s.Init(ctx, swarm.InitRequest{ListenAddr: n.addr, AdvertiseAddr: n.addr}); err != nil {
		t.Fatal(err)
	}
	defer n.s.Close()
	if _, err := n.s.Init(ctx, swarm.InitRequest{ListenAddr: n.addr, AdvertiseAddr: n.addr}); err != ErrAlreadyInSwarm {
		t.Fatalf("second init: %v", err)
	}
	sw, _ := n.s.Inspect(ctx)
	w := newNode(t, "w")
	if err := w.s.Join(ctx, swarm.JoinRequest{RemoteAddrs: []string{n.addr}, AdvertiseAddr: w.addr, JoinToken: sw.JoinTokens.Worker}); err != nil {
		t.Fatal(err)
	}
	defer w.s.Close()
	if _, err := w.s.Nodes(ctx, filters.NewArgs()); err != ErrNotManager {
		t.Fatalf("nodes on a worker: %v", err)
	}
	if err := n.s.Leave(ctx, false); err == nil || !strings.Contains(err.Error(), "Removing the last manager erases all current state") {
		t.Fatalf("last manager leaving: %v", err)
	}
	self, _ := n.s.Node(ctx, n.s.Info(ctx).NodeID)
	self.Spec.Role = swarm.NodeRoleWorker
	if err := n.s.UpdateNode(ctx, self.ID, self.Version.Index, self.Spec); err != ErrLastManagerGone {
		t.Fatalf("demoting the last manager: %v", err)
	}
	if _, err := n.s.Nodes(ctx, filters.NewArgs(filters.Arg("role", "boss"))); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("bad role filter: %v", err)
	}
}

// A manager demoted while it was down learns it from a heartbeat when it comes back, and becomes a worker.
func TestDemotedWhileDown(t *testing.T) {
	ctx := context.Background()
	a, b, c := newNode(t, "a"), newNode(t, "b"), newNode(t, "c")
	t.Cleanup(a.s.Close)
	t.Cleanup(b.s.Close)
	if _, err := a.s.Init(ctx, swarm.InitRequest{ListenAddr: a.addr, AdvertiseAddr: a.addr}); err != nil {
		t.Fatal(err)
	}
	sw, _ := a.s.Inspect(ctx)
	for _, n := range []*testNode{b, c} {
		if err := n.s.Join(ctx, swarm.JoinRequest{ListenAddr: n.addr, AdvertiseAddr: n.addr, RemoteAddrs: []string{a.addr}, JoinToken: sw.JoinTokens.Manager}); err != nil {
			t.Fatal(err)
		}
	}
	c.s.Close()
	node, err := a.s.Node(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	node.Spec.Role = swarm.NodeRoleWorker
	if err := a.s.UpdateNode(ctx, "c", node.Version.Index, node.Spec); err != nil {
		t.Fatal(err)
	}
	c.open("c")
	if err := c.s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.s.Close)
	waitFor(t, 20*time.Second, "the demoted manager to become a worker", func() bool {
		info := c.s.Info(ctx)
		return info.LocalNodeState == swarm.LocalNodeStateActive && !info.ControlAvailable
	})
	waitFor(t, 10*time.Second, "the leader to see it ready as a worker", func() bool {
		n, err := a.s.Node(ctx, "c")
		return err == nil && n.ManagerStatus == nil && n.Status.State == swarm.NodeStateReady
	})
}

// Five managers keep working without two of them (the leader among them); without three they refuse
// writes with Docker's "does not have a leader" error.
func TestFiveManagersMinorityLoss(t *testing.T) {
	ctx := context.Background()
	var nodes []*testNode
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		n := newNode(t, name)
		nodes = append(nodes, n)
		t.Cleanup(n.s.Close)
	}
	if _, err := nodes[0].s.Init(ctx, swarm.InitRequest{ListenAddr: nodes[0].addr, AdvertiseAddr: nodes[0].addr}); err != nil {
		t.Fatal(err)
	}
	sw, _ := nodes[0].s.Inspect(ctx)
	for _, n := range nodes[1:] {
		if err := n.s.Join(ctx, swarm.JoinRequest{ListenAddr: n.addr, AdvertiseAddr: n.addr, RemoteAddrs: []string{nodes[0].addr}, JoinToken: sw.JoinTokens.Manager}); err != nil {
			t.Fatal(err)
		}
	}
	label := func(n *testNode, v string) error {
		node, err := n.s.Node(ctx, "e")
		if err != nil {
			return err
		}
		node.Spec.Labels = map[string]string{"v": v}
		return n.s.UpdateNode(ctx, node.ID, node.Version.Index, node.Spec)
	}
	nodes[0].s.Close() // the leader
	nodes[1].s.Close()
	waitFor(t, 10*time.Second, "a write with 3 of 5 managers", func() bool { return label(nodes[4], "3of5") == nil })
	nodes[2].s.Close()
	err := label(nodes[4], "2of5")
	if err == nil || !strings.Contains(err.Error(), "does not have a leader") {
		t.Fatalf("write with 2 of 5 managers: %v", err)
	}
	if n, err := nodes[3].s.Node(ctx, "e"); err != nil || n.Spec.Labels["v"] != "3of5" {
		t.Fatalf("state kept by the survivors: %v %v", n.Spec.Labels, err)
	}
}
