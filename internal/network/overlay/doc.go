// Package overlay is the data plane of networks that span hosts: the library cluster mode drives from
// its replicated desired state. It knows nothing of Raft, nodes or tasks; the cluster tells each host
// which networks exist (Ensure), where every endpoint of them lives (AddPeer, or SetPeers for the whole
// set), which local containers join them (Attach), and which services they carry (SetService). Every
// call is idempotent, so a restarted berthd replays the cluster's state and ends where it was; the
// driver's own state is in memory only.
//
// # One overlay network on one host
//
//	host namespace (underlay)          overlay namespace (one per network)       container namespace
//	  eth0 10.1.0.5  <--UDP 4789-->     vxlan (VNI, learning off, proxy ARP)
//	                                    br0  gateway + this node's address   <-- veth --> eth1 (MTU 1450)
//	  ov<id> ---- route subnet -------> gw0  (published ports only)
//
// Each overlay network gets a network namespace of its own (as Docker does), pinned under Config.Dir:
// its bridge and VXLAN device live there, not in the host namespace. The subnet of an overlay is then
// nobody's business on the host (it can neither clash with the host's routes nor with another overlay's),
// the host's firewall rules never see the network's bridged traffic, and deleting the network is
// unpinning one namespace. The VXLAN device is created in the host namespace and then moved, so its
// UDP socket and its route lookups stay in the host namespace, on the underlay.
//
// Endpoints on other hosts are static: AddPeer writes the VXLAN forwarding entry (MAC -> host), a bridge
// entry (MAC -> the VXLAN port) and a neighbour entry (IP -> MAC) that the VXLAN device's proxy ARP
// answers from. Nothing is learnt and nothing is flooded: there is no default forwarding entry, so
// broadcasts (ARP included, which the proxy answers locally) never leave the host, and no multicast
// underlay is needed.
//
// # Services
//
// A service has a virtual IP on the network and a list of backends (its healthy tasks' addresses).
// Load balancing is nftables DNAT, "dnat to numgen inc mod N map { 0 : b0, 1 : b1, ... }", applied in
// the client container's own namespace (output hook), so a connection goes straight from client to
// backend with the client's address intact; conntrack maps replies back to the VIP. IPVS would do the
// same job (Docker uses it) but it is one more kernel subsystem, often a module that is not loaded
// (this kernel has none), and its state would have to be kept in step with nftables anyway for the
// published ports; nftables is already how Berth writes its rules, and one batch replaces a table
// atomically. A changed backend list rewrites the affected tables at once; conntrack entries of removed
// backends are deleted, so even a long-lived UDP flow moves to a live task.
//
// Published ports (the routing mesh) are DNAT rules in the host namespace: a connection to any of the
// host's addresses on the published port goes to one of the service's backends, anywhere in the
// cluster, through the gw0 link into the overlay namespace, where it is source-NATed to this node's
// own address on the network (Spec.NodeIP) so that the backend's reply comes back through this host.
// Mode "host" publishes only on hosts that run a task of the service, to those local tasks. Either
// way the task sees the connection come from the node's address, as behind Docker's routing mesh (a
// task has no route back to the client but through the overlay). The gw0 link routes the network's
// subnet on the host, so networks with a NodeIP must have subnets distinct on a host (the cluster's
// address pool hands out disjoint ones); the host's forward rule lets only published-port connections
// through it.
//
// Each overlay namespace also runs the embedded DNS server of package network on the gateway address
// (the same on every host, answered locally): a service's name resolves to its VIP (to its tasks'
// addresses when it has no VIP), tasks.<name> to its tasks' addresses; other names go upstream.
//
// # What it does not do
//
// Containers on an overlay reach the outside world through another network (a bridge), as Docker's
// tasks do through docker_gwbridge. Traffic between hosts is not encrypted (Docker's --opt encrypted).
package overlay
