package overlay

import (
	"log/slog"
	"net"
	"net/netip"
)

// VXLANPort is the UDP port VXLAN traffic uses between hosts (IANA's, as Docker's).
const VXLANPort = 4789

// DefaultMTU leaves room for the 50 bytes VXLAN adds (outer Ethernet, IPv4, UDP, VXLAN headers) on a
// 1500-byte underlay.
const DefaultMTU = 1450

// Publish modes.
const (
	// ModeIngress publishes a port on every host with the network: the routing mesh.
	ModeIngress = "ingress"
	// ModeHost publishes a port only on hosts running a task of the service, to those tasks.
	ModeHost = "host"
)

// Config wires a Driver to one host.
type Config struct {
	// HostNS is the path of the host's network namespace, the one holding the underlay; "" means
	// berthd's own. Tests run several "hosts" in one kernel this way.
	HostNS string
	// Dir is where the overlay networks' namespaces are pinned; it is made a private mount.
	Dir string
	// Underlay is this host's address on the underlay, the one other hosts send VXLAN packets to (the
	// node's advertise address).
	Underlay netip.Addr
	// Table names the nftables table the driver writes in the host's namespace and in containers'
	// namespaces; "" = "berth-overlay".
	Table string
	// Upstream are the DNS servers asked for names that are not services; none = answer SERVFAIL.
	Upstream []string
	Logger   *slog.Logger
}

// Spec is one overlay network as every host sees it. All fields but NodeIP are the same on every host.
type Spec struct {
	ID   string // cluster-wide network ID; names the network's namespace and links
	Name string // for messages
	// VNI is the VXLAN network identifier, unique per network in the cluster (1 to 2^24-1).
	VNI     uint32
	Subnet  netip.Prefix // IPv4
	Gateway netip.Addr   // on every host's bridge: the DNS server's address; never a peer
	// NodeIP is this host's own address on the network, from the cluster's IPAM: the source address of
	// published-port traffic leaving this host into the overlay. Other hosts add it as a peer (with the
	// MAC from NodeMAC). Zero: this host publishes no ports on this network.
	NodeIP netip.Addr
	MTU    int // 0 = DefaultMTU
}

// Endpoint is a container's attachment to an overlay network on this host.
type Endpoint struct {
	NetNS  string // the container's pinned network namespace
	IfName string // the interface name inside it (eth1...)
	IP     netip.Addr
	MAC    net.HardwareAddr // nil = derived from IP (02:42:<IP>)
}

// Port is one port of a service.
type Port struct {
	Proto  string // tcp (default) or udp
	Target uint16 // the port the tasks listen on; the VIP forwards it unchanged
	// Published is the port opened on hosts (0 = none), forwarded to Target on a backend.
	Published uint16
	Mode      string // ModeIngress (default) or ModeHost
}

// Service is what a network carries for one cluster service.
type Service struct {
	Name string // DNS name; tasks.<Name> resolves to Backends
	// VIP is the service's virtual IP on the network; zero = none (DNS round robin: Name resolves to
	// the backends directly, and published ports still balance over them).
	VIP netip.Addr
	// Ports are the ports the VIP forwards (none = every port) and those published on hosts.
	Ports    []Port
	Backends []netip.Addr // the running, healthy tasks' addresses on this network
}

// NodeMAC is the MAC address of a host's bridge on an overlay network, derived from its NodeIP, for the
// peer entries other hosts add for it.
func NodeMAC(nodeIP netip.Addr) net.HardwareAddr { return macFor(nodeIP) }
