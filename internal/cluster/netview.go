package cluster

import (
	"errors"
	"net/netip"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/network/overlay"
	"github.com/docker/docker/api/types/swarm"
)

// NodeNetworks is what a node needs to set up the cluster's overlay networks on its side: the networks
// its tasks use and ingress, where each of their endpoints on other nodes lives, and the services each
// network carries. It travels with
// the node's assignments and is replaced as a whole, so a node that missed updates (or restarted) ends
// up where the cluster is.
type NodeNetworks struct {
	// Underlay is this node's address on the network between the nodes (its advertise address).
	Underlay netip.Addr
	Networks []NetworkView
}

// NetworkView is one overlay network as one node sees it.
type NetworkView struct {
	Spec     overlay.Spec
	Ingress  bool
	Peers    []overlay.Peer
	Services []overlay.Service
}

// ErrNetworksBusy is what a NetworkAgent returns (joined with any other error) when a network it should
// remove still has containers on it: the agent tries again shortly, without a warning.
var ErrNetworksBusy = errors.New("an overlay network to remove still has containers")

// NetworkAgent sets up a node's overlay networks; the daemon implements it with the overlay driver.
// SetNetworks is called before the node's tasks start or change, with the whole picture each time.
type NetworkAgent interface {
	SetNetworks(NodeNetworks) error
}

// networkView is node's NodeNetworks as the store has it now.
func (m *manager) networkView(node string, services map[string]swarm.Service, tasks []swarm.Task) NodeNetworks {
	var out NodeNetworks
	hosts := map[string]netip.Addr{}
	for _, o := range m.store.List(kindNode) {
		if a, err := netip.ParseAddr(decode[nodeObject](o).Status.Addr); err == nil {
			hosts[o.ID] = a
		}
	}
	out.Underlay = hosts[node]
	svcIDs := make([]string, 0, len(services))
	for id := range services {
		svcIDs = append(svcIDs, id)
	}
	sort.Strings(svcIDs)
	// A node sets up the networks its tasks use, and ingress (every node publishes the routing mesh's
	// ports).
	used := map[string]bool{}
	for _, t := range tasks {
		if t.NodeID == node && !taskEnded(t) {
			for _, at := range t.NetworksAttachments {
				used[at.Network.ID] = true
			}
		}
	}
	for _, o := range m.store.List(kindNetwork) {
		n := toNetwork(o)
		if !n.Spec.Ingress && !used[n.ID] {
			continue
		}
		subnet, gw := n.subnet()
		v := NetworkView{Ingress: n.Spec.Ingress, Spec: overlay.Spec{ID: n.ID, Name: n.Spec.Name, VNI: n.vni(), Subnet: subnet, Gateway: gw}}
		if n.Spec.Ingress {
			// The ingress network only carries the routing mesh: names are served on the tasks' own
			// networks, so it has no DNS server (whose address is the gateway).
			v.Spec.Gateway = netip.Addr{}
			v.Spec.NodeIP, _ = netip.ParseAddr(n.NodeIPs[node])
			for id, ip := range n.NodeIPs {
				if a, err := netip.ParseAddr(ip); err == nil && id != node && hosts[id].IsValid() {
					v.Peers = append(v.Peers, overlay.Peer{Host: hosts[id], IP: a})
				}
			}
		}
		backends := map[string][]netip.Addr{}
		for _, t := range tasks {
			if taskEnded(t) {
				continue
			}
			for _, at := range t.NetworksAttachments {
				if at.Network.ID != n.ID || len(at.Addresses) == 0 {
					continue
				}
				p, err := netip.ParsePrefix(at.Addresses[0])
				if err != nil {
					continue
				}
				if t.NodeID != node && hosts[t.NodeID].IsValid() {
					v.Peers = append(v.Peers, overlay.Peer{Host: hosts[t.NodeID], IP: p.Addr()})
				}
				if t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning {
					backends[t.ServiceID] = append(backends[t.ServiceID], p.Addr())
				}
			}
		}
		sort.Slice(v.Peers, func(i, j int) bool { return v.Peers[i].IP.Less(v.Peers[j].IP) })
		for _, id := range svcIDs {
			sv := services[id]
			if !serviceOn(sv, n) {
				continue
			}
			svc := overlay.Service{Name: sv.Spec.Name, Backends: backends[id]}
			sort.Slice(svc.Backends, func(i, j int) bool { return svc.Backends[i].Less(svc.Backends[j]) })
			for _, vip := range sv.Endpoint.VirtualIPs {
				if p, err := netip.ParsePrefix(vip.Addr); err == nil && vip.NetworkID == n.ID {
					svc.VIP = p.Addr()
				}
			}
			if n.Spec.Ingress {
				for _, p := range sv.Endpoint.Ports {
					if p.PublishMode != swarm.PortConfigPublishModeIngress || p.PublishedPort == 0 {
						continue
					}
					svc.Ports = append(svc.Ports, overlay.Port{Proto: strings.ToLower(string(p.Protocol)), Target: uint16(p.TargetPort),
						Published: uint16(p.PublishedPort), Mode: overlay.ModeIngress})
				}
			}
			v.Services = append(v.Services, svc)
		}
		out.Networks = append(out.Networks, v)
	}
	return out
}

// serviceOn reports whether sv's tasks join network n.
func serviceOn(sv swarm.Service, n networkObject) bool {
	if n.Spec.Ingress {
		return usesIngress(sv)
	}
	for _, na := range sv.Spec.TaskTemplate.Networks {
		if na.Target == n.ID {
			return true
		}
	}
	return false
}
