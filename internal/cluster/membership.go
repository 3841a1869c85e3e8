package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/ca"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/transport"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/swarm"
)

// Init makes this node the first manager of a new cluster and returns its node ID. It returns once the
// node leads and the cluster object is committed, so `swarm join-token` works at once.
func (s *Service) Init(ctx context.Context, req swarm.InitRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	if s.state != nil {
		return "", ErrAlreadyInSwarm
	}
	if req.ForceNewCluster {
		return "", errdefs.NotImplemented(errors.New("--force-new-cluster is not supported by Berth yet"))
	}
	if req.AutoLockManagers {
		return "", errdefs.NotImplemented(errors.New("--autolock is not supported by Berth yet"))
	}
	listen, err := listenAddr(req.ListenAddr)
	if err != nil {
		return "", err
	}
	adv, err := advertiseAddr(req.AdvertiseAddr, listen, "")
	if err != nil {
		return "", err
	}
	clusterID, nodeID := newID(), newID()
	authority, err := ca.New(clusterID)
	if err != nil {
		return "", err
	}
	keyPEM, csrPEM, err := ca.NewKey()
	if err != nil {
		return "", err
	}
	certPEM, err := authority.Sign(csrPEM, nodeID, ca.ManagerOU)
	if err != nil {
		return "", err
	}
	_ = os.RemoveAll(s.cfg.Root)
	id, err := s.saveIdentity(certPEM, keyPEM, authority.CertPEM)
	if err != nil {
		return "", err
	}
	st := &localState{NodeID: nodeID, ClusterID: clusterID, Role: RoleManager, ListenAddr: listen, AdvertiseAddr: adv,
		Managers: []Peer{{NodeID: nodeID, Addr: adv}}}
	if err := s.saveState(st); err != nil {
		return "", err
	}
	s.state = st
	s.setCreds(transport.NewCreds(id))
	if err := s.startManager(true); err != nil {
		s.resetLocked()
		return "", err
	}
	m := s.mgr
	if err := m.waitLeader(ctx, 10*time.Second); err != nil {
		s.resetLocked()
		return "", err
	}
	co := clusterObject{
		Spec: defaultSpec(req.Spec), CACert: authority.CertPEM, CAKey: authority.KeyPEM,
		WorkerToken: ca.NewToken(authority.Cert), ManagerToken: ca.NewToken(authority.Cert),
		DefaultAddrPool: req.DefaultAddrPool, SubnetSize: req.SubnetSize, DataPathPort: req.DataPathPort,
	}
	if len(co.DefaultAddrPool) == 0 {
		co.DefaultAddrPool = []string{"10.0.0.0/8"}
	}
	if co.SubnetSize == 0 {
		co.SubnetSize = 24
	}
	if co.DataPathPort == 0 {
		co.DataPathPort = 4789
	}
	n := nodeObject{
		Spec:        swarm.NodeSpec{Role: swarm.NodeRoleManager, Availability: availability(req.Availability)},
		Description: s.description(),
		Status:      swarm.NodeStatus{State: swarm.NodeStateReady, Addr: hostOf(adv)},
		RaftAddr:    adv,
	}
	if err := s.apply(ctx, m,
		store.Change{Op: store.OpCreate, Kind: kindCluster, ID: clusterID, Data: encode(co)},
		store.Change{Op: store.OpCreate, Kind: kindNode, ID: nodeID, Data: encode(n)},
	); err != nil {
		s.resetLocked()
		return "", err
	}
	// The ingress network is allocated from the pool the cluster object (just stored) describes.
	ingress, err := m.ingressChange()
	if err != nil {
		s.resetLocked()
		return "", err
	}
	if err := s.apply(ctx, m, ingress); err != nil {
		s.resetLocked()
		return "", err
	}
	s.startSession()
	s.log.Info("swarm: initialized", "node", nodeID, "cluster", clusterID, "addr", adv)
	return nodeID, nil
}

// Join makes this node a member of the cluster a manager at req.RemoteAddrs runs, with the role its join
// token gives. A manager returns once it has caught up with the raft log.
func (s *Service) Join(ctx context.Context, req swarm.JoinRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	if s.state != nil {
		return ErrAlreadyInSwarm
	}
	s.joining = true
	s.publish()
	defer func() { s.joining = false }()
	if len(req.RemoteAddrs) == 0 {
		return errdefs.InvalidParameter(errors.New("at least 1 RemoteAddr is required to join"))
	}
	tok, err := ca.ParseToken(req.JoinToken)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid join token: %q", req.JoinToken))
	}
	listen, err := listenAddr(req.ListenAddr)
	if err != nil {
		return err
	}
	var (
		resp   joinResponse
		remote string
		adv    string
	)
	keyPEM, csrPEM, err := ca.NewKey()
	if err != nil {
		return err
	}
	for _, ra := range req.RemoteAddrs {
		remote = withPort(ra, DefaultPort)
		if adv, err = advertiseAddr(req.AdvertiseAddr, listen, remote); err != nil {
			return err
		}
		resp, err = joinCall(ctx, remote, tok.Digest, joinRequest{
			Token: req.JoinToken, CSR: csrPEM, AdvertiseAddr: adv,
			Availability: availability(req.Availability), Description: s.description(),
		})
		if err == nil || errdefs.KindOf(err) == errdefs.KindInvalidParameter {
			break
		}
	}
	if err != nil {
		if errors.Is(err, transport.ErrCAMismatch) || strings.Contains(err.Error(), transport.ErrCAMismatch.Error()) {
			return errdefs.InvalidParameter(fmt.Errorf("error while validating Root CA Certificate: %s", transport.ErrCAMismatch))
		}
		if errdefs.KindOf(err) == errdefs.KindUnknown {
			return errdefs.Unavailable(fmt.Errorf("could not join the swarm at %s: %w", remote, err))
		}
		return err
	}
	_ = os.RemoveAll(s.cfg.Root)
	id, err := s.saveIdentity(resp.Cert, keyPEM, resp.CA)
	if err != nil {
		return err
	}
	st := &localState{NodeID: resp.NodeID, ClusterID: resp.ClusterID, Role: resp.Role, ListenAddr: listen, AdvertiseAddr: adv, Managers: resp.Managers}
	if err := s.saveState(st); err != nil {
		return err
	}
	s.state = st
	s.setCreds(transport.NewCreds(id))
	if resp.Role == RoleManager {
		if err := s.becomeVoter(ctx, remote); err != nil {
			s.resetLocked()
			return err
		}
	}
	s.startSession()
	s.log.Info("swarm: joined", "node", resp.NodeID, "role", resp.Role, "via", remote)
	return nil
}

// becomeVoter starts raft on a node that holds a manager certificate, asks the manager at via to add it
// as a voter, and waits until the log has reached it. The caller holds s.mu.
func (s *Service) becomeVoter(ctx context.Context, via string) error {
	if err := s.startManager(false); err != nil {
		return err
	}
	m := s.mgr
	if err := s.client.post(ctx, via, pathAddVoter, []byte("{}"), nil); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, ok := m.node(s.state.NodeID); ok {
			if addr, _ := m.raft.LeaderWithID(); addr != "" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errdefs.Unavailable(errors.New("timed out waiting for the raft log to reach this node"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Leave takes this node out of its cluster and deletes its swarm state. A manager needs force, as in
// Docker: leaving can cost the cluster its quorum, and the last manager takes the cluster with it.
func (s *Service) Leave(ctx context.Context, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.publish()
	if s.state == nil {
		return ErrNotInSwarm
	}
	m, st := s.mgr, s.state
	if m != nil && !force {
		msg := "You are attempting to leave the swarm on a node that is participating as a manager. "
		voters := m.voters()
		reachable := 0
		for id := range voters {
			if _, n, ok := m.node(id); ok && n.Status.State == swarm.NodeStateReady {
				reachable++
			}
		}
		if len(voters) <= 1 {
			msg += "Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. "
			return errdefs.InvalidParameter(errors.New(msg))
		}
		if reachable-1 <= len(voters)/2 {
			msg += fmt.Sprintf("Removing this node leaves %d managers out of %d. Without a Raft quorum your swarm will be inaccessible. ", reachable-1, len(voters))
		}
		msg += "The only way to restore a swarm that has lost consensus is to reinitialize it with `--force-new-cluster`. Use `--force` to suppress this message."
		return errdefs.InvalidParameter(errors.New(msg))
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := nodeRequest{NodeID: st.NodeID}
	if m != nil {
		if len(m.voters()) > 1 {
			if err := s.leaderCall(cctx, m, opLeave, req, nil); err != nil {
				s.log.Warn("swarm: leaving without telling the leader", "err", err)
			}
		}
	} else if err := s.workerCall(cctx, st, pathLeave, req, nil); err != nil {
		s.log.Warn("swarm: leaving without telling a manager", "err", err)
	}
	s.resetLocked()
	s.log.Info("swarm: left the swarm", "node", st.NodeID)
	return nil
}

// resetLocked stops everything and forgets the cluster. The caller holds s.mu.
func (s *Service) resetLocked() {
	s.leaving.Store(true)
	defer s.leaving.Store(false)
	s.stopLocked()
	s.state = nil
	s.setCreds(nil)
	_ = os.RemoveAll(s.cfg.Root)
}

func (s *Service) description() NodeDescription {
	if s.cfg.Description == nil {
		h, _ := os.Hostname()
		return NodeDescription{Hostname: h}
	}
	return s.cfg.Description()
}

func availability(a swarm.NodeAvailability) swarm.NodeAvailability {
	if a == "" {
		return swarm.NodeAvailabilityActive
	}
	return a
}

// admit handles a join request on a manager: it checks the token, issues the node's certificate and
// records the node.
func (s *Service) admit(ctx context.Context, m *manager, req joinRequest, remoteIP string) (joinResponse, error) {
	o, c, ok := m.cluster()
	if !ok {
		return joinResponse{}, ErrNoLeader
	}
	var role Role
	switch {
	case ca.SameToken(req.Token, c.WorkerToken):
		role = RoleWorker
	case ca.SameToken(req.Token, c.ManagerToken):
		role = RoleManager
	default:
		return joinResponse{}, ErrInvalidToken
	}
	switch req.Availability {
	case swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
	default:
		return joinResponse{}, errdefs.InvalidParameter(fmt.Errorf("invalid availability %q", req.Availability))
	}
	authority, err := ca.Load(c.CACert, c.CAKey)
	if err != nil {
		return joinResponse{}, err
	}
	nodeID := newID()
	cert, err := authority.SignFor(req.CSR, nodeID, roleOU(role), certValidity(c))
	if err != nil {
		return joinResponse{}, errdefs.InvalidParameter(err)
	}
	host := hostOf(req.AdvertiseAddr)
	if host == "" {
		host = remoteIP
	}
	n := nodeObject{
		Spec:        swarm.NodeSpec{Role: swarm.NodeRole(role), Availability: req.Availability},
		Description: req.Description,
		Status:      swarm.NodeStatus{State: swarm.NodeStateReady, Addr: host},
		RaftAddr:    req.AdvertiseAddr,
	}
	if err := s.apply(ctx, m, store.Change{Op: store.OpCreate, Kind: kindNode, ID: nodeID, Data: encode(n)}); err != nil {
		return joinResponse{}, err
	}
	return joinResponse{NodeID: nodeID, ClusterID: o.ID, Role: role, Cert: cert, CA: c.CACert, Managers: m.managers()}, nil
}

func roleOU(r Role) string {
	if r == RoleManager {
		return ca.ManagerOU
	}
	return ca.WorkerOU
}

// managers lists the raft voters as peers.
func (m *manager) managers() []Peer {
	var out []Peer
	for id, addr := range m.voters() {
		out = append(out, Peer{NodeID: id, Addr: addr})
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.NodeID, b.NodeID) })
	return out
}
