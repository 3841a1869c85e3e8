package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/transport"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// raftConfig is hashicorp/raft's configuration with LAN timings: a follower that hears nothing from the
// leader for 500–1000 ms starts an election.
func (s *Service) raftConfig(nodeID string, notify chan bool) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(nodeID)
	c.HeartbeatTimeout = 500 * time.Millisecond
	c.ElectionTimeout = 500 * time.Millisecond
	c.LeaderLeaseTimeout = 250 * time.Millisecond
	c.CommitTimeout = 20 * time.Millisecond
	// Frequent small snapshots: a manager restarted after kill -9 serves the state of its last snapshot at
	// once, while raft's replication to it (which backs off while it was down) catches up the rest.
	c.SnapshotThreshold = 64
	c.SnapshotInterval = 10 * time.Second
	c.TrailingLogs = 1024
	c.NotifyCh = notify
	c.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: s.cfg.RaftLog})
	return c
}

// startManager starts raft and the node's listener from the on-disk state; bootstrap makes a new
// one-member cluster (swarm init). The caller holds s.mu.
func (s *Service) startManager(bootstrap bool) (err error) {
	st := s.state
	if err := os.MkdirAll(s.cfg.Root, 0o700); err != nil {
		return err
	}
	adv, err := net.ResolveTCPAddr("tcp", st.AdvertiseAddr)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("advertise address %q: %w", st.AdvertiseAddr, err))
	}
	mux, err := transport.Listen(st.ListenAddr, s.creds)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("failed to listen on remote API address: %w", err))
	}
	defer func() {
		if err != nil {
			mux.Close()
		}
	}()
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(s.cfg.Root, "raft.db"), BoltOptions: &bolt.Options{Timeout: time.Second}})
	if err != nil {
		return fmt.Errorf("opening the raft log: %w", err)
	}
	defer func() {
		if err != nil {
			logs.Close()
		}
	}()
	snaps, err := raft.NewFileSnapshotStore(s.cfg.Root, 2, s.cfg.RaftLog)
	if err != nil {
		return err
	}
	trans := raft.NewNetworkTransport(mux.StreamLayer(adv), 3, 2*time.Second, s.cfg.RaftLog)
	notify := make(chan bool, 16)
	conf := s.raftConfig(st.NodeID, notify)
	if bootstrap {
		cfg := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: raft.ServerAddress(st.AdvertiseAddr)}}}
		if err := raft.BootstrapCluster(conf, logs, logs, snaps, trans, cfg); err != nil {
			return fmt.Errorf("bootstrapping raft: %w", err)
		}
	}
	fsm := store.New()
	r, err := raft.NewRaft(conf, fsm, logs, logs, snaps, trans)
	if err != nil {
		return fmt.Errorf("starting raft: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &manager{self: st.NodeID, raft: r, bolt: logs, store: fsm, mux: mux, status: newStatusTracker(), statuses: newStatusQueue(), logs: newLogBroker(), stopLoop: cancel}
	// A manager that has applied nothing yet (it is joining) cannot tell managers apart; it has nothing to
	// protect either, and the leader must reach it.
	mux.SetRaftFilter(func(id string) bool { return fsm.Index() == 0 || m.isManager(id) })
	// Anyone who reaches the port can open a connection: a request must arrive whole in bounded time
	// (long polls wait in the handler, after their small body is read), and idle connections go.
	m.ctrl = &http.Server{Handler: s.controlHandler(m), ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = m.ctrl.Serve(mux.ControlListener()) }()
	go s.leaderLoop(ctx, m, notify)
	go s.orchestrate(ctx, m)
	s.mgr = m
	return nil
}

// waitLeader waits until raft knows a leader (this node or another).
func (m *manager) waitLeader(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if addr, _ := m.raft.LeaderWithID(); addr != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitIndex waits until the local store has applied index, so that a read after a forwarded write sees it.
func (m *manager) waitIndex(ctx context.Context, index uint64) {
	deadline := time.Now().Add(3 * time.Second)
	for m.store.Index() < index && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
}

// isLeader reports whether this manager leads.
func (m *manager) isLeader() bool { return m.raft.State() == raft.Leader }

// applyLocal commits a command through this node's raft, which must lead.
func (m *manager) applyLocal(cmd store.Command) (uint64, error) {
	f := m.raft.Apply(cmd.Encode(), 5*time.Second)
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return 0, errNotLeader
		}
		return 0, err
	}
	if err, ok := f.Response().(error); ok && err != nil {
		return 0, storeError(err)
	}
	return f.Index(), nil
}

// errNotLeader is what a manager that no longer leads answers a leader call with; the caller retries.
var errNotLeader = errdefs.Unavailable(errors.New("node is not the raft leader"))

// apply commits changes as one command, through the leader wherever it is.
func (s *Service) apply(ctx context.Context, m *manager, changes ...store.Change) error {
	cmd := store.Command{Changes: changes, Time: time.Now().UTC()}
	var resp applyResponse
	if err := s.leaderCall(ctx, m, opApply, cmd, &resp); err != nil {
		return err
	}
	m.waitIndex(ctx, resp.Index)
	return nil
}

// statusTracker is the leader's memory of heartbeats.
type statusTracker struct {
	mu    sync.Mutex
	since time.Time
	seen  map[string]time.Time
}

func newStatusTracker() *statusTracker {
	return &statusTracker{since: time.Now(), seen: map[string]time.Time{}}
}

// reset starts a new term of leadership: every node gets a full DownAfter to be heard from.
func (t *statusTracker) reset() {
	t.mu.Lock()
	t.since, t.seen = time.Now(), map[string]time.Time{}
	t.mu.Unlock()
}

func (t *statusTracker) beat(id string) {
	t.mu.Lock()
	t.seen[id] = time.Now()
	t.mu.Unlock()
}

func (t *statusTracker) last(id string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.seen[id]; ok {
		return at
	}
	return t.since
}

// leaderLoop follows leadership changes: the leader marks silent nodes down; every manager notices when
// it has been demoted (no longer a voter and its node's role is worker) and becomes a worker.
func (s *Service) leaderLoop(ctx context.Context, m *manager, notify <-chan bool) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case lead := <-notify:
			if lead {
				m.status.reset()
				s.log.Info("swarm: this node is the raft leader")
			}
		case <-tick.C:
			if m.isLeader() {
				s.markDown(ctx, m)
			} else if m.demoted() && m.demoting.CompareAndSwap(false, true) {
				go s.demoteSelf()
			}
		}
	}
}

// markDown records as down the nodes the leader has not heard from for DownAfter.
func (s *Service) markDown(ctx context.Context, m *manager) {
	m.status.beat(m.self)
	for _, o := range m.store.List(kindNode) {
		n := decode[nodeObject](o)
		last := m.status.last(o.ID)
		if o.Updated.After(last) {
			last = o.Updated // a node that just joined or was just marked ready
		}
		if n.Status.State != "ready" || time.Since(last) < DownAfter {
			continue
		}
		n.Status.State, n.Status.Message = "down", "heartbeat failure"
		cmd := store.Command{Time: time.Now().UTC(), Changes: []store.Change{{Op: store.OpPut, Kind: kindNode, ID: o.ID, IfVersion: o.Version, Data: encode(n)}}}
		if _, err := m.applyLocal(cmd); err != nil {
			s.log.Debug("swarm: marking node down", "node", o.ID, "err", err)
		} else {
			s.log.Info("swarm: node is down", "node", o.ID)
		}
	}
}

// demoted reports whether this manager has been removed from raft as part of a demotion.
func (m *manager) demoted() bool {
	_, n, ok := m.node(m.self)
	if !ok || n.Spec.Role != "worker" {
		return false
	}
	_, voter := m.voters()[m.self]
	return !voter
}
