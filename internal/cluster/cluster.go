// Package cluster is swarm mode: a group of berthd hosts acting as one. This slice holds membership —
// `swarm init/join/leave`, join tokens, nodes and their roles — on top of three smaller packages: store
// (the replicated objects, a raft FSM), ca (the cluster's certificate authority and tokens) and transport
// (mutual TLS between nodes, raft and control traffic on one port).
//
// Managers run hashicorp/raft; its log and stable store are one bbolt file and its snapshots are files,
// all under <data-root>/swarm/, so every manager's state survives restarts. Only the leader writes: a
// follower forwards a write to the leader over the control channel and waits until the write has reached
// its own store, so a client reads what it just wrote from any manager. Workers do not run raft: they
// keep a heartbeat with a manager, which the leader turns into the node's ready/down status.
//
// Lifecycle of a node: inactive (no <data-root>/swarm/state.json) → active as manager or worker after
// init or join (state.json, the certificates and, for managers, the raft data are written before the call
// returns) → inactive again after leave, which deletes <data-root>/swarm. At daemon start an active node
// resumes its role from what is on disk.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/transport"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// DefaultPort is the swarm listen port.
const DefaultPort = "2377"

// Timing. Tight enough that a failed leader is replaced in about a second on a LAN.
var (
	HeartbeatPeriod = time.Second
	// DownAfter is how long the leader waits for a heartbeat before it marks a node down.
	DownAfter = 4 * time.Second
)

// Errors users see, in Docker's words.
var (
	ErrNoSwarm         = errdefs.Unavailable(errors.New(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`))
	ErrNotManager      = errdefs.Unavailable(errors.New("This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."))
	ErrAlreadyInSwarm  = errdefs.Unavailable(errors.New(`This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.`))
	ErrNotInSwarm      = errdefs.Unavailable(errors.New("This node is not part of a swarm"))
	ErrNoLeader        = errdefs.Unavailable(errors.New("rpc error: code = Unknown desc = The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online."))
	ErrInvalidToken    = errdefs.InvalidParameter(errors.New("rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"))
	ErrLastManagerGone = errdefs.InvalidParameter(errors.New("rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm"))
)

// Config is what the daemon gives the cluster service.
type Config struct {
	// Root is the directory of the node's swarm state (<data-root>/swarm).
	Root string
	// Description describes this host's engine; the manager records it in the node object.
	Description func() NodeDescription
	Logger      *slog.Logger
	// RaftLog receives the raft library's own log lines (warnings and errors); nil discards.
	RaftLog io.Writer
	// NewExecutor makes the executor of this node's tasks; nil runs no tasks here.
	NewExecutor func(nodeID string) (Executor, error)
	// Networks sets up the overlay networks on this node; nil joins none.
	Networks NetworkAgent
	// TaskLogs reads the logs of this node's task containers for service logs; nil sends none.
	TaskLogs TaskLogSource
}

// Role is a node's role.
type Role string

// The roles.
const (
	RoleManager Role = "manager"
	RoleWorker  Role = "worker"
)

// localState is state.json: who this node is in its cluster.
type localState struct {
	NodeID        string `json:"nodeID"`
	ClusterID     string `json:"clusterID"`
	Role          Role   `json:"role"`
	ListenAddr    string `json:"listenAddr"`
	AdvertiseAddr string `json:"advertiseAddr"`
	// Managers are the managers' addresses last heard of, for a worker to reconnect to.
	Managers []Peer `json:"managers"`
}

// Peer is a manager as a worker knows it.
type Peer struct {
	NodeID string `json:"nodeID"`
	Addr   string `json:"addr"`
}

// Service is this node's part in a cluster.
type Service struct {
	cfg Config
	log *slog.Logger

	// mu serializes init, join, leave and role changes, and guards the fields below.
	mu      sync.RWMutex
	state   *localState // nil when inactive
	creds   *transport.Creds
	mgr     *manager // nil unless a manager
	session context.CancelFunc
	lastErr string // the last heartbeat failure, shown by `docker info`
	// nextRenewal is when the heartbeat loop may try to renew the certificate again (after a failure);
	// only that loop reads and writes it.
	nextRenewal time.Time

	client *controlClient
	// agents counts the running node agents; stopping waits for them, so the executor is closed before
	// the engine underneath goes.
	agents sync.WaitGroup
	// leaving is set while the node leaves the swarm: its agent removes the task containers then, as
	// Docker does.
	leaving atomic.Bool

	// view is what readers (Info, the node and swarm routes) see: published by every change above, so
	// that they never wait for a join or a promotion in progress, which hold mu for seconds.
	view atomic.Pointer[view]
	// joining is set while a join is in progress (LocalNodeState "pending").
	joining bool
}

// view is a consistent copy of the service's state for readers.
type view struct {
	state   *localState
	mgr     *manager
	lastErr string
	joining bool
}

// publish makes the current state visible to readers; the caller holds s.mu.
func (s *Service) publish() {
	v := &view{mgr: s.mgr, lastErr: s.lastErr, joining: s.joining}
	if s.state != nil {
		cp := *s.state
		cp.Managers = slices.Clone(cp.Managers)
		v.state = &cp
	}
	s.view.Store(v)
}

func (s *Service) current() *view {
	if v := s.view.Load(); v != nil {
		return v
	}
	return &view{}
}

// setCreds replaces the node's identity (nil when it leaves); the caller holds s.mu.
func (s *Service) setCreds(c *transport.Creds) {
	s.creds = c
	s.client.creds.Store(c)
	s.client.tr.CloseIdleConnections()
}

// manager is what runs on a manager node.
type manager struct {
	self     string // this node's ID
	raft     *raft.Raft
	bolt     *raftboltdb.BoltStore
	store    *store.Store
	mux      *transport.Mux
	ctrl     *http.Server
	status   *statusTracker
	statuses *statusQueue
	logs     *logBroker
	stopLoop context.CancelFunc
	// demoting is set once the manager has seen its own demotion and started becoming a worker.
	demoting atomic.Bool
	// caughtUp is set while this manager leads and has applied everything committed before its term:
	// only then does it orchestrate and tell nodes their tasks.
	caughtUp atomic.Bool
	// netMu makes the leader's network allocations one at a time (createNetwork).
	netMu sync.Mutex
}

// New returns the service; Start resumes a node that was part of a cluster.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RaftLog == nil {
		cfg.RaftLog = io.Discard
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	s.client = newControlClient()
	return s
}

// Start resumes the node's role from disk; a node that never joined stays inactive.
func (s *Service) Start(ctx context.Context) error {
	st, err := s.loadState()
	if err != nil || st == nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	id, err := s.loadIdentity()
	if err != nil {
		return fmt.Errorf("swarm state: %w", err)
	}
	s.state = st
	s.setCreds(transport.NewCreds(id))
	if st.Role == RoleManager {
		if err := s.startManager(false); err != nil {
			s.state = nil
			return fmt.Errorf("resuming as a swarm manager: %w", err)
		}
	}
	s.startSession()
	s.log.Info("swarm: resumed", "node", st.NodeID, "role", st.Role)
	return nil
}

// Close stops raft and the heartbeats; the node stays part of its cluster and resumes at the next Start.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	if m := s.mgr; m != nil {
		// A leader that stops cleanly hands over first, so writes do not wait for an election.
		if m.isLeader() && len(m.voters()) > 1 {
			_ = m.raft.LeadershipTransfer().Error()
		}
		// A snapshot now lets the next start serve the state at once, before the leader's log reaches it
		// ("nothing new to snapshot" is fine).
		_ = m.raft.Snapshot().Error()
	}
	s.stopLocked()
}

func (s *Service) stopLocked() {
	if s.session != nil {
		s.session()
		s.session = nil
		done := make(chan struct{})
		go func() { s.agents.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}
	if s.mgr != nil {
		s.mgr.shutdown()
		s.mgr = nil
	}
}

// shutdown stops the manager. The mux goes first: closing it ends the Accept calls that the control
// server and raft's transport are blocked in, which their own Close waits for.
func (m *manager) shutdown() {
	m.stopLoop()
	_ = m.mux.Close()
	_ = m.ctrl.Close()
	_ = m.raft.Shutdown().Error()
	_ = m.bolt.Close()
}

func (s *Service) statePath() string { return filepath.Join(s.cfg.Root, "state.json") }
func (s *Service) certDir() string   { return filepath.Join(s.cfg.Root, "certificates") }

func (s *Service) loadState() (*localState, error) {
	b, err := os.ReadFile(s.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st localState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", s.statePath(), err)
	}
	return &st, nil
}

// saveState writes state.json atomically.
func (s *Service) saveState(st *localState) error {
	if err := os.MkdirAll(s.cfg.Root, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	return writeAtomic(s.statePath(), b, 0o600)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// saveIdentity writes the node's certificate, key and the CA certificate (Docker's file names).
func (s *Service) saveIdentity(certPEM, keyPEM, caPEM []byte) (*transport.Identity, error) {
	id, err := transport.NewIdentity(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.certDir(), 0o700); err != nil {
		return nil, err
	}
	for name, data := range map[string][]byte{"swarm-root-ca.crt": caPEM, "swarm-node.crt": certPEM, "swarm-node.key": keyPEM} {
		if err := writeAtomic(filepath.Join(s.certDir(), name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return id, nil
}

func (s *Service) loadIdentity() (*transport.Identity, error) {
	var files [3][]byte
	for i, name := range []string{"swarm-node.crt", "swarm-node.key", "swarm-root-ca.crt"} {
		b, err := os.ReadFile(filepath.Join(s.certDir(), name))
		if err != nil {
			return nil, err
		}
		files[i] = b
	}
	return transport.NewIdentity(files[0], files[1], files[2])
}

// newID returns a random 25-character base-36 ID, the form of Docker's node and cluster IDs.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%025s", new(big.Int).SetBytes(b[:]).Text(36))
}

// managerView returns the running manager, or the error a cluster read gets on this node.
func (s *Service) managerView() (*manager, *localState, error) {
	v := s.current()
	if v.state == nil {
		return nil, nil, ErrNoSwarm
	}
	if v.mgr == nil {
		return nil, nil, ErrNotManager
	}
	return v.mgr, v.state, nil
}

// storeError gives a store error its kind.
func storeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return errdefs.NotFound(err)
	case errors.Is(err, store.ErrConflict):
		return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = Unknown desc = update out of sequence"))
	case errors.Is(err, store.ErrExists):
		return errdefs.Conflict(err)
	}
	return err
}
