package cluster

import (
	"encoding/json"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/docker/docker/api/types/swarm"
)

// The kinds of stored objects.
const (
	kindCluster = "cluster"
	kindNode    = "node"
	// kindRemoved records nodes removed with `node rm`: their certificates are no longer honoured.
	kindRemoved = "removed-node"
	// kindService holds a swarm.Service and kindTask a swarm.Task, without their Meta (the object's).
	kindService = "service"
	kindTask    = "task"
)

// clusterObject is the one cluster object: its spec, CA and join tokens. The CA key is replicated to every
// manager, as in Docker, so any manager can admit a node.
type clusterObject struct {
	Spec         swarm.Spec `json:"spec"`
	CACert       []byte     `json:"caCert"`
	CAKey        []byte     `json:"caKey"`
	WorkerToken  string     `json:"workerToken"`
	ManagerToken string     `json:"managerToken"`
	// DefaultAddrPool and SubnetSize are what overlay networks will allocate from.
	DefaultAddrPool []string `json:"defaultAddrPool"`
	SubnetSize      uint32   `json:"subnetSize"`
	DataPathPort    uint32   `json:"dataPathPort"`
}

// NodeDescription is what a node tells the managers about itself.
type NodeDescription = swarm.NodeDescription

// nodeObject is one node.
type nodeObject struct {
	Spec        swarm.NodeSpec        `json:"spec"`
	Description swarm.NodeDescription `json:"description"`
	Status      swarm.NodeStatus      `json:"status"`
	// RaftAddr is a manager's listen address as other managers reach it (host:port).
	RaftAddr string `json:"raftAddr,omitempty"`
}

func decode[T any](o store.Object) T {
	var v T
	_ = json.Unmarshal(o.Data, &v)
	return v
}

func encode(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

func meta(o store.Object) swarm.Meta {
	return swarm.Meta{Version: swarm.Version{Index: o.Version}, CreatedAt: o.Created, UpdatedAt: o.Updated}
}

func (m *manager) cluster() (store.Object, clusterObject, bool) {
	objs := m.store.List(kindCluster)
	if len(objs) == 0 {
		return store.Object{}, clusterObject{}, false
	}
	return objs[0], decode[clusterObject](objs[0]), true
}

func (m *manager) node(id string) (store.Object, nodeObject, bool) {
	o, ok := m.store.Get(kindNode, id)
	if !ok {
		return o, nodeObject{}, false
	}
	return o, decode[nodeObject](o), true
}

// defaultSpec is a new cluster's spec, Docker's defaults with our dispatcher period.
func defaultSpec(in swarm.Spec) swarm.Spec {
	spec := in
	spec.Name = "default"
	if spec.Orchestration.TaskHistoryRetentionLimit == nil {
		n := int64(5)
		spec.Orchestration.TaskHistoryRetentionLimit = &n
	}
	if spec.Raft.SnapshotInterval == 0 {
		spec.Raft.SnapshotInterval = 10000
	}
	if spec.Raft.LogEntriesForSlowFollowers == 0 {
		spec.Raft.LogEntriesForSlowFollowers = 500
	}
	if spec.Raft.KeepOldSnapshots == nil {
		n := uint64(0)
		spec.Raft.KeepOldSnapshots = &n
	}
	if spec.Raft.ElectionTick == 0 {
		spec.Raft.ElectionTick = 10
	}
	if spec.Raft.HeartbeatTick == 0 {
		spec.Raft.HeartbeatTick = 1
	}
	if spec.Dispatcher.HeartbeatPeriod == 0 {
		spec.Dispatcher.HeartbeatPeriod = HeartbeatPeriod
	}
	if spec.CAConfig.NodeCertExpiry == 0 {
		spec.CAConfig.NodeCertExpiry = 90 * 24 * time.Hour
	}
	return spec
}

// toSwarmNode turns a stored node into the API's shape. ManagerStatus comes from the raft configuration:
// a node is a manager when it is a raft voter.
func (m *manager) toSwarmNode(o store.Object, n nodeObject, voters map[string]string, leaderID string) swarm.Node {
	sn := swarm.Node{ID: o.ID, Meta: meta(o), Spec: n.Spec, Description: n.Description, Status: n.Status}
	if co, c, ok := m.cluster(); ok {
		sn.Description.TLSInfo = clusterInfo(co, c).TLSInfo // every node's certificate is from the one CA
	}
	if addr, ok := voters[o.ID]; ok {
		reach := swarm.ReachabilityReachable
		if n.Status.State != swarm.NodeStateReady {
			reach = swarm.ReachabilityUnreachable
		}
		sn.ManagerStatus = &swarm.ManagerStatus{Leader: o.ID == leaderID, Reachability: reach, Addr: addr}
		if o.ID == leaderID {
			sn.ManagerStatus.Reachability = swarm.ReachabilityReachable
		}
	}
	return sn
}

// voters returns the raft voters by node ID with their addresses.
func (m *manager) voters() map[string]string {
	out := map[string]string{}
	f := m.raft.GetConfiguration()
	if f.Error() != nil {
		return out
	}
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == 0 { // raft.Voter
			out[string(srv.ID)] = string(srv.Address)
		}
	}
	return out
}

func (m *manager) leaderID() string {
	_, id := m.raft.LeaderWithID()
	return string(id)
}

// isManager reports whether node id may act as a manager now: a raft voter, or a node whose role is
// manager (one joining or being promoted). A demoted node's old manager certificate is not enough.
func (m *manager) isManager(id string) bool {
	if _, ok := m.voters()[id]; ok {
		return true
	}
	_, n, ok := m.node(id)
	return ok && n.Spec.Role == swarm.NodeRoleManager
}

// toService returns a stored service with its Meta.
func toService(o store.Object) swarm.Service {
	sv := decode[swarm.Service](o)
	sv.ID, sv.Meta = o.ID, meta(o)
	return sv
}

// toTask returns a stored task with its Meta.
func toTask(o store.Object) swarm.Task {
	t := decode[swarm.Task](o)
	t.ID, t.Meta = o.ID, meta(o)
	return t
}

// withoutMeta is what is stored of a service or task: the store keeps the version and times.
func withoutMeta[T any](v T, clear func(*T)) json.RawMessage {
	clear(&v)
	return encode(v)
}

func encodeService(sv swarm.Service) json.RawMessage {
	return withoutMeta(sv, func(s *swarm.Service) { s.Meta = swarm.Meta{} })
}

func encodeTask(t swarm.Task) json.RawMessage {
	return withoutMeta(t, func(t *swarm.Task) { t.Meta = swarm.Meta{} })
}
