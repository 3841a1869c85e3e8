package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/internal/cluster/ca"
	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

var nodeFilters = map[string]bool{"id": true, "name": true, "role": true, "membership": true, "node.label": true, "label": true}

// Nodes lists the cluster's nodes matching f (id, name, role, membership, node.label).
func (s *Service) Nodes(ctx context.Context, f filters.Args) ([]swarm.Node, error) {
	m, _, err := s.managerView()
	if err != nil {
		return nil, err
	}
	if err := f.Validate(nodeFilters); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	for _, r := range f.Get("role") {
		if r != "manager" && r != "worker" {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter 'role=%s'", r))
		}
	}
	for _, r := range f.Get("membership") {
		if r != "accepted" && r != "pending" {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter 'membership=%s'", r))
		}
	}
	voters, leader := m.voters(), m.leaderID()
	out := []swarm.Node{}
	for _, o := range m.store.List(kindNode) {
		n := m.toSwarmNode(o, decode[nodeObject](o), voters, leader)
		if matchNode(n, f) {
			out = append(out, n)
		}
	}
	return out, nil
}

func matchNode(n swarm.Node, f filters.Args) bool {
	if ids := f.Get("id"); len(ids) > 0 && !anyPrefix(n.ID, ids) {
		return false
	}
	if names := f.Get("name"); len(names) > 0 && !anyPrefix(n.Description.Hostname, names) && !anyPrefix(n.Spec.Name, names) {
		return false
	}
	role := "worker"
	if n.ManagerStatus != nil {
		role = "manager"
	}
	if f.Contains("role") && !f.ExactMatch("role", role) {
		return false
	}
	if f.Contains("membership") && !f.ExactMatch("membership", "accepted") {
		return false
	}
	if f.Contains("node.label") && !f.MatchKVList("node.label", n.Spec.Labels) {
		return false
	}
	if f.Contains("label") && !f.MatchKVList("label", n.Description.Engine.Labels) {
		return false
	}
	return true
}

func anyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// resolveNode finds a node by full ID, then by name or hostname, then by unique ID prefix.
func (m *manager) resolveNode(ref string) (store.Object, nodeObject, error) {
	if o, n, ok := m.node(ref); ok {
		return o, n, nil
	}
	var byName, byPrefix []store.Object
	for _, o := range m.store.List(kindNode) {
		n := decode[nodeObject](o)
		if n.Spec.Name == ref || n.Description.Hostname == ref {
			byName = append(byName, o)
		}
		if strings.HasPrefix(o.ID, ref) {
			byPrefix = append(byPrefix, o)
		}
	}
	for _, list := range [][]store.Object{byName, byPrefix} {
		switch len(list) {
		case 0:
			continue
		case 1:
			return list[0], decode[nodeObject](list[0]), nil
		default:
			return store.Object{}, nodeObject{}, errdefs.InvalidParameter(fmt.Errorf("node %s is ambiguous (%d matches found)", ref, len(list)))
		}
	}
	return store.Object{}, nodeObject{}, errdefs.NotFound(fmt.Errorf("node %s not found", ref))
}

// Node describes one node.
func (s *Service) Node(ctx context.Context, ref string) (swarm.Node, error) {
	m, _, err := s.managerView()
	if err != nil {
		return swarm.Node{}, err
	}
	o, n, err := m.resolveNode(ref)
	if err != nil {
		return swarm.Node{}, err
	}
	return m.toSwarmNode(o, n, m.voters(), m.leaderID()), nil
}

// UpdateNode replaces a node's spec if version is still its version. Changing the role promotes or
// demotes it; the node itself notices and changes its certificate and whether it runs raft.
func (s *Service) UpdateNode(ctx context.Context, ref string, version uint64, spec swarm.NodeSpec) error {
	m, _, err := s.managerView()
	if err != nil {
		return err
	}
	o, n, err := m.resolveNode(ref)
	if err != nil {
		return err
	}
	switch spec.Role {
	case swarm.NodeRoleManager, swarm.NodeRoleWorker:
	default:
		return errdefs.InvalidParameter(fmt.Errorf("invalid role %q: must be manager or worker", spec.Role))
	}
	switch spec.Availability {
	case swarm.NodeAvailabilityActive, swarm.NodeAvailabilityPause, swarm.NodeAvailabilityDrain:
	default:
		return errdefs.InvalidParameter(fmt.Errorf("invalid availability %q: must be active, pause or drain", spec.Availability))
	}
	if version != o.Version {
		return errdefs.InvalidParameter(errors.New("rpc error: code = Unknown desc = update out of sequence"))
	}
	demote := n.Spec.Role == swarm.NodeRoleManager && spec.Role == swarm.NodeRoleWorker
	if demote {
		managers := 0
		for _, x := range m.store.List(kindNode) {
			if decode[nodeObject](x).Spec.Role == swarm.NodeRoleManager {
				managers++
			}
		}
		if managers <= 1 {
			return ErrLastManagerGone
		}
	}
	n.Spec = spec
	if err := s.apply(ctx, m, store.Change{Op: store.OpPut, Kind: kindNode, ID: o.ID, IfVersion: version, Data: encode(n)}); err != nil {
		return err
	}
	if demote {
		return s.leaderCall(ctx, m, opDemote, nodeRequest{NodeID: o.ID}, nil)
	}
	return nil
}

// RemoveNode deletes a node from the cluster. A manager must be demoted first; a node that is not down
// needs force. A removed node's certificate is no longer honoured.
func (s *Service) RemoveNode(ctx context.Context, ref string, force bool) error {
	m, _, err := s.managerView()
	if err != nil {
		return err
	}
	o, n, err := m.resolveNode(ref)
	if err != nil {
		return err
	}
	if _, voter := m.voters()[o.ID]; voter || n.Spec.Role == swarm.NodeRoleManager {
		return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = FailedPrecondition desc = node %s is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal", o.ID))
	}
	if n.Status.State == swarm.NodeStateReady && !force {
		return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = FailedPrecondition desc = node %s is not down and can't be removed", o.ID))
	}
	return s.apply(ctx, m,
		store.Change{Op: store.OpDelete, Kind: kindNode, ID: o.ID},
		store.Change{Op: store.OpPut, Kind: kindRemoved, ID: o.ID, Data: encode(struct{}{})},
	)
}

// Inspect describes the cluster, join tokens included (managers only).
func (s *Service) Inspect(ctx context.Context) (swarm.Swarm, error) {
	m, _, err := s.managerView()
	if err != nil {
		return swarm.Swarm{}, err
	}
	o, c, ok := m.cluster()
	if !ok {
		return swarm.Swarm{}, ErrNoLeader
	}
	return swarm.Swarm{ClusterInfo: clusterInfo(o, c), JoinTokens: swarm.JoinTokens{Worker: c.WorkerToken, Manager: c.ManagerToken}}, nil
}

func clusterInfo(o store.Object, c clusterObject) swarm.ClusterInfo {
	info := swarm.ClusterInfo{
		ID: o.ID, Meta: meta(o), Spec: c.Spec,
		DefaultAddrPool: c.DefaultAddrPool, SubnetSize: c.SubnetSize, DataPathPort: c.DataPathPort,
	}
	if cert, err := ca.ParseCert(c.CACert); err == nil {
		info.TLSInfo = swarm.TLSInfo{TrustRoot: string(c.CACert), CertIssuerSubject: cert.RawSubject, CertIssuerPublicKey: cert.RawSubjectPublicKeyInfo}
	}
	return info
}

// Update replaces the cluster's spec if version is still its version, and rotates the join tokens asked.
func (s *Service) Update(ctx context.Context, version uint64, spec swarm.Spec, flags swarm.UpdateFlags) error {
	m, _, err := s.managerView()
	if err != nil {
		return err
	}
	o, c, ok := m.cluster()
	if !ok {
		return ErrNoLeader
	}
	if version != o.Version {
		return errdefs.InvalidParameter(errors.New("rpc error: code = Unknown desc = update out of sequence"))
	}
	if flags.RotateManagerUnlockKey || spec.EncryptionConfig.AutoLockManagers {
		return errdefs.NotImplemented(errors.New("swarm autolock is not supported by Berth yet"))
	}
	if e := spec.CAConfig.NodeCertExpiry; e != 0 && e < ca.MinCertValidity {
		return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = minimum certificate expiry time is %s", ca.MinCertValidity))
	}
	c.Spec = defaultSpec(spec)
	if flags.RotateWorkerToken || flags.RotateManagerToken {
		root, err := ca.ParseCert(c.CACert)
		if err != nil {
			return err
		}
		if flags.RotateWorkerToken {
			c.WorkerToken = ca.NewToken(root)
		}
		if flags.RotateManagerToken {
			c.ManagerToken = ca.NewToken(root)
		}
	}
	return s.apply(ctx, m, store.Change{Op: store.OpPut, Kind: kindCluster, ID: o.ID, IfVersion: version, Data: encode(c)})
}

// Info is this node's swarm section of `docker info`.
func (s *Service) Info(ctx context.Context) swarm.Info {
	v := s.current()
	st, m, lastErr := v.state, v.mgr, v.lastErr
	if st == nil {
		if v.joining {
			return swarm.Info{LocalNodeState: swarm.LocalNodeStatePending}
		}
		return swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
	}
	info := swarm.Info{NodeID: st.NodeID, NodeAddr: hostOf(st.AdvertiseAddr), LocalNodeState: swarm.LocalNodeStateActive, Error: lastErr}
	for _, p := range st.Managers {
		info.RemoteManagers = append(info.RemoteManagers, swarm.Peer{NodeID: p.NodeID, Addr: p.Addr})
	}
	if m == nil {
		if lastErr != "" {
			info.LocalNodeState = swarm.LocalNodeStatePending
		}
		return info
	}
	info.ControlAvailable = true
	info.RemoteManagers = nil
	for _, p := range m.managers() {
		info.RemoteManagers = append(info.RemoteManagers, swarm.Peer{NodeID: p.NodeID, Addr: p.Addr})
	}
	info.Managers = len(info.RemoteManagers)
	info.Nodes = len(m.store.List(kindNode))
	if o, c, ok := m.cluster(); ok {
		ci := clusterInfo(o, c)
		info.Cluster = &ci
	}
	return info
}
