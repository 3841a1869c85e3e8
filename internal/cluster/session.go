package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berth-dev/berth/internal/cluster/ca"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/transport"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/swarm"
	"github.com/hashicorp/raft"
)

// heartbeat records that a node is alive (leader only) and tells it its role and the managers.
func (s *Service) heartbeat(ctx context.Context, m *manager, req nodeRequest) (heartbeatResponse, error) {
	if _, removed := m.store.Get(kindRemoved, req.NodeID); removed {
		return heartbeatResponse{}, errdefs.NotFound(errors.New("node was removed from the swarm"))
	}
	o, n, ok := m.node(req.NodeID)
	if !ok {
		return heartbeatResponse{}, errdefs.NotFound(fmt.Errorf("node %s not found", req.NodeID))
	}
	m.status.beat(req.NodeID)
	if n.Status.State != swarm.NodeStateReady || (req.Addr != "" && n.Status.Addr != req.Addr) {
		n.Status = swarm.NodeStatus{State: swarm.NodeStateReady, Addr: req.Addr}
		if n.Status.Addr == "" {
			n.Status.Addr = hostOf(n.RaftAddr)
		}
		if err := s.apply(ctx, m, store.Change{Op: store.OpPut, Kind: kindNode, ID: o.ID, IfVersion: o.Version, Data: encode(n)}); err != nil {
			return heartbeatResponse{}, err
		}
		s.log.Info("swarm: node is ready", "node", o.ID)
	}
	return heartbeatResponse{Role: Role(n.Spec.Role), Managers: m.managers()}, nil
}

// renew issues a node a new certificate for the role its node object gives it (promotion, demotion).
func (s *Service) renew(m *manager, req nodeRequest) (renewResponse, error) {
	if _, removed := m.store.Get(kindRemoved, req.NodeID); removed {
		return renewResponse{}, errdefs.NotFound(errors.New("node was removed from the swarm"))
	}
	_, n, ok := m.node(req.NodeID)
	if !ok {
		return renewResponse{}, errdefs.NotFound(fmt.Errorf("node %s not found", req.NodeID))
	}
	_, c, _ := m.cluster()
	authority, err := ca.Load(c.CACert, c.CAKey)
	if err != nil {
		return renewResponse{}, err
	}
	role := Role(n.Spec.Role)
	cert, err := authority.SignFor(req.CSR, req.NodeID, roleOU(role), certValidity(c))
	if err != nil {
		return renewResponse{}, errdefs.InvalidParameter(err)
	}
	return renewResponse{Cert: cert, CA: c.CACert, Role: role}, nil
}

// removeManager takes a manager out of raft (leader only): its node becomes a worker, and down when it
// is leaving the swarm.
func (s *Service) removeManager(ctx context.Context, m *manager, id string, leaving bool) error {
	o, n, ok := m.node(id)
	if !ok {
		return errdefs.NotFound(fmt.Errorf("node %s not found", id))
	}
	voters := m.voters()
	_, isVoter := voters[id]
	if isVoter && len(voters) == 1 {
		return ErrLastManagerGone
	}
	if n.Spec.Role != swarm.NodeRoleWorker || leaving {
		n.Spec.Role = swarm.NodeRoleWorker
		if leaving {
			n.Status.State, n.Status.Message = swarm.NodeStateDown, "node left the swarm"
		}
		if _, err := m.applyLocal(store.Command{Time: time.Now().UTC(), Changes: []store.Change{{Op: store.OpPut, Kind: kindNode, ID: id, IfVersion: o.Version, Data: encode(n)}}}); err != nil {
			return err
		}
	}
	if isVoter {
		if err := m.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
			return errdefs.Unavailable(fmt.Errorf("removing %s from raft: %w", id, err))
		}
	}
	return nil
}

// startSession starts the heartbeats; the caller holds s.mu.
func (s *Service) startSession() {
	ctx, cancel := context.WithCancel(context.Background())
	s.session = cancel
	if s.state != nil {
		s.agents.Add(1)
		go func(id string) { defer s.agents.Done(); s.runAgent(ctx, id) }(s.state.NodeID)
		if s.cfg.TaskLogs != nil {
			s.agents.Add(1)
			go func() { defer s.agents.Done(); s.runLogAgent(ctx) }()
		}
	}
	go func() {
		t := time.NewTicker(HeartbeatPeriod)
		defer t.Stop()
		for {
			s.beat(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// beat sends one heartbeat: a manager to the leader, a worker to any manager it knows. A worker whose node
// has been promoted becomes a manager.
func (s *Service) beat(ctx context.Context) {
	s.mu.RLock()
	st, m := s.state, s.mgr
	var cp localState
	if st != nil {
		cp = *st
		cp.Managers = slices.Clone(st.Managers)
	}
	s.mu.RUnlock()
	if st == nil {
		return
	}
	req := nodeRequest{NodeID: cp.NodeID, Addr: hostOf(cp.AdvertiseAddr)}
	var resp heartbeatResponse
	var err error
	if m != nil {
		err = s.leaderCall(ctx, m, opHeartbeat, req, &resp)
		if errors.Is(err, ErrNoLeader) {
			// A manager demoted while it was down never hears of it through raft (it is no longer a member);
			// any manager it reaches can tell it.
			err = s.workerCall(ctx, &cp, pathHeartbeat, req, &resp)
		}
	} else {
		err = s.workerCall(ctx, &cp, pathHeartbeat, req, &resp)
	}
	if s.recordBeat(ctx, st, m, resp, err) {
		if m == nil {
			s.promoteSelf(ctx)
		} else if m.demoting.CompareAndSwap(false, true) {
			s.demoteSelf()
		}
		return
	}
	if err == nil {
		s.renewIfDue(ctx, st)
	}
}

// needsRenewal is ca.NeedsRenewal; tests replace it rather than wait weeks.
var needsRenewal = ca.NeedsRenewal

// certValidity is the lifetime of the certificates the cluster issues.
func certValidity(c clusterObject) time.Duration {
	return max(c.Spec.CAConfig.NodeCertExpiry, ca.MinCertValidity)
}

// renewIfDue replaces this node's certificate, for the same role, once needsRenewal says so: a cluster
// must not stop the day its first certificates expire. The new identity goes into the node's Creds in
// place, as the swarm port and raft's stream layer hold that same object. The call to the managers
// is made without s.mu; a failed attempt waits a minute before the next.
func (s *Service) renewIfDue(ctx context.Context, st *localState) {
	s.mu.RLock()
	creds := s.creds
	current := s.state == st && creds != nil
	s.mu.RUnlock()
	if !current || time.Now().Before(s.nextRenewal) {
		return
	}
	id := creds.Get()
	if id == nil || id.Cert.Leaf == nil || !needsRenewal(id.Cert.Leaf, time.Now()) {
		return
	}
	s.nextRenewal = time.Now().Add(time.Minute)
	keyPEM, csrPEM, err := ca.NewKey()
	if err != nil {
		return
	}
	var rr renewResponse
	if err := s.workerCall(ctx, st, pathRenew, nodeRequest{CSR: csrPEM}, &rr); err != nil {
		s.log.Warn("swarm: renewing this node's certificate", "err", err, "expires", id.Cert.Leaf.NotAfter)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != st || s.creds != creds || rr.Role != st.Role {
		return // the node left, or changed roles meanwhile: that path issued its own certificate
	}
	nid, err := s.saveIdentity(rr.Cert, keyPEM, rr.CA)
	if err != nil {
		s.log.Warn("swarm: saving the renewed certificate", "err", err)
		return
	}
	creds.Set(nid)
	s.client.tr.CloseIdleConnections()
	s.nextRenewal = time.Time{}
	s.log.Info("swarm: renewed this node's certificate", "expires", nid.Cert.Leaf.NotAfter)
}

// recordBeat records a heartbeat's outcome and reports whether this node's role has changed.
func (s *Service) recordBeat(ctx context.Context, st *localState, m *manager, resp heartbeatResponse, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != st {
		return false
	}
	defer s.publish()
	if err != nil {
		if ctx.Err() == nil {
			s.lastErr = err.Error()
			s.log.Debug("swarm: heartbeat failed", "err", err)
		}
		return false
	}
	s.lastErr = ""
	if len(resp.Managers) > 0 && !slices.Equal(resp.Managers, st.Managers) {
		st.Managers = resp.Managers
		_ = s.saveState(st)
	}
	return (m == nil && resp.Role == RoleManager) || (m != nil && resp.Role == RoleWorker)
}

// workerCall calls a public endpoint on the first manager that answers.
func (s *Service) workerCall(ctx context.Context, st *localState, path string, req any, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	err = ErrNoLeader
	for _, p := range st.Managers {
		if err = s.client.post(ctx, p.Addr, path, body, out); err == nil {
			return nil
		}
	}
	return err
}

// promoteSelf turns a worker whose node has been promoted into a manager: a manager certificate, raft,
// then a voter.
func (s *Service) promoteSelf(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	st := s.state
	if st == nil || s.mgr != nil {
		return
	}
	if err := s.changeRole(ctx, st, RoleManager); err != nil {
		s.log.Warn("swarm: promotion failed", "err", err)
		return
	}
	var err error
	for _, p := range st.Managers {
		if err = s.becomeVoter(ctx, p.Addr); err == nil {
			s.log.Info("swarm: this node is now a manager")
			return
		}
	}
	s.log.Warn("swarm: joining raft after promotion failed", "err", err)
}

// demoteSelf turns a manager that has been removed from raft by a demotion into a worker.
func (s *Service) demoteSelf() {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	m, st := s.mgr, s.state
	if m == nil || st == nil {
		return
	}
	managers := slices.DeleteFunc(m.managers(), func(p Peer) bool { return p.NodeID == m.self })
	m.shutdown()
	s.mgr = nil
	_ = os.Remove(filepath.Join(s.cfg.Root, "raft.db"))
	_ = os.RemoveAll(filepath.Join(s.cfg.Root, "snapshots"))
	if len(managers) > 0 {
		st.Managers = managers
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.changeRole(ctx, st, RoleWorker); err != nil {
		s.log.Warn("swarm: renewing the certificate after demotion failed", "err", err)
	}
	s.log.Info("swarm: this node is now a worker")
}

// changeRole gets a certificate for role and records the role; the caller holds s.mu.
func (s *Service) changeRole(ctx context.Context, st *localState, role Role) error {
	keyPEM, csrPEM, err := ca.NewKey()
	if err != nil {
		return err
	}
	var rr renewResponse
	if err := s.workerCall(ctx, st, pathRenew, nodeRequest{CSR: csrPEM}, &rr); err != nil {
		return err
	}
	if rr.Role != role {
		return fmt.Errorf("the managers gave this node the role %s, not %s", rr.Role, role)
	}
	id, err := s.saveIdentity(rr.Cert, keyPEM, rr.CA)
	if err != nil {
		return err
	}
	s.setCreds(transport.NewCreds(id))
	st.Role = role
	return s.saveState(st)
}
