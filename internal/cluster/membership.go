package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/ca"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/cluster/transport"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/swarm"
	"github.com/hashicorp/raft"
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
	cert, err := authority.Sign(req.CSR, nodeID, roleOU(role))
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
	cert, err := authority.Sign(req.CSR, req.NodeID, roleOU(role))
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
	}
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
func (s *Service) workerCall(ctx context.Context, st *localState, path string, req nodeRequest, out any) error {
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

// listenAddr completes a --listen-addr: default 0.0.0.0:2377, a bare host gets port 2377.
func listenAddr(a string) (string, error) {
	if a == "" {
		return "0.0.0.0:" + DefaultPort, nil
	}
	a = withPort(a, DefaultPort)
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid listen address %q: %w", a, err))
	}
	if host != "" && net.ParseIP(host) == nil {
		if ip, err := interfaceIP(host); err == nil {
			return withPort(ip, portOf(a)), nil
		}
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid listen address %q: not an IP address or interface", a))
	}
	return a, nil
}

// advertiseAddr finds the address other nodes reach this one at: the one given (IP, IP:port or an
// interface name), else the listen address's IP, else the local address that routes to remote, else the
// only global unicast IPv4 address of this host.
func advertiseAddr(a, listen, remote string) (string, error) {
	port := portOf(listen)
	if a != "" {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			host, p = a, port
		}
		if net.ParseIP(host) == nil {
			ip, err := interfaceIP(host)
			if err != nil {
				return "", errdefs.InvalidParameter(fmt.Errorf("advertise address must be a non-zero IP address or network interface (with optional port number)"))
			}
			host = ip
		}
		if ip := net.ParseIP(host); ip.IsUnspecified() {
			return "", errdefs.InvalidParameter(errors.New("advertise address must be a non-zero IP address or network interface (with optional port number)"))
		}
		return net.JoinHostPort(host, p), nil
	}
	if h := hostOf(listen); h != "" && !net.ParseIP(h).IsUnspecified() {
		return listen, nil
	}
	if remote != "" {
		if c, err := net.Dial("udp", remote); err == nil {
			ip := c.LocalAddr().(*net.UDPAddr).IP.String()
			c.Close()
			return net.JoinHostPort(ip, port), nil
		}
	}
	var found []string
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || isBridge(ifc.Name) {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				found = append(found, fmt.Sprintf("%s on %s", ipn.IP, ifc.Name))
			}
		}
	}
	switch len(found) {
	case 1:
		return net.JoinHostPort(strings.Fields(found[0])[0], port), nil
	case 0:
		return "", errdefs.InvalidParameter(errors.New("could not find a local address to advertise: please specify one with --advertise-addr"))
	}
	return "", errdefs.InvalidParameter(fmt.Errorf("could not choose an IP address to advertise since this system has multiple addresses on different interfaces (%s) - specify one with --advertise-addr", strings.Join(found, " and ")))
}

func isBridge(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge"))
	return err == nil
}

func interfaceIP(name string) (string, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return "", err
	}
	addrs, _ := ifc.Addrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
	}
	return "", fmt.Errorf("interface %s has no IPv4 address", name)
}

func withPort(a, port string) string {
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a
	}
	return net.JoinHostPort(strings.Trim(a, "[]"), port)
}

func hostOf(a string) string {
	h, _, err := net.SplitHostPort(a)
	if err != nil {
		return ""
	}
	return h
}

func portOf(a string) string {
	_, p, err := net.SplitHostPort(a)
	if err != nil || p == "" {
		return DefaultPort
	}
	return p
}
