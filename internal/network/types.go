package network

import (
	"net/netip"
	"time"
)

// Drivers.
const (
	DriverBridge = "bridge"
	DriverHost   = "host"
	DriverNull   = "null"
	// DriverOverlay networks belong to the cluster: it registers them here (SetOverlays) so that task
	// containers can join them, and an Overlay attaches the endpoints.
	DriverOverlay = "overlay"
)

// Network is one network as recorded.
type Network struct {
	ID         string
	Name       string
	Driver     string
	Bridge     string       `json:",omitempty"` // the bridge interface (bridge driver)
	Subnet     netip.Prefix `json:",omitzero"`
	Gateway    netip.Addr   `json:",omitzero"`
	IPRange    netip.Prefix `json:",omitzero"` // where dynamic addresses come from; zero = the subnet
	Internal   bool         `json:",omitempty"`
	Attachable bool         `json:",omitempty"`
	// Default marks the default bridge, which (as in Docker) has no name resolution.
	Default bool              `json:",omitempty"`
	Labels  map[string]string `json:",omitempty"`
	Options map[string]string `json:",omitempty"`
	Created time.Time
}

// Endpoint is a container's attachment to one network.
type Endpoint struct {
	ID        string
	NetworkID string
	Network   string // name, for messages and DNS
	IP        netip.Addr
	Prefix    int
	Gateway   netip.Addr `json:",omitzero"`
	MAC       string
	Static    bool     `json:",omitempty"` // asked for with --ip
	Aliases   []string `json:",omitempty"`
	Veth      string   // host side of the pair
	IfName    string   // container side: eth0, eth1...
	// DefaultRoute is set on the endpoint whose gateway is the container's default route.
	DefaultRoute bool `json:",omitempty"`
}

// Port is one published port.
type Port struct {
	Proto    string     // tcp, udp
	HostIP   netip.Addr `json:",omitzero"` // zero = every host address
	HostPort uint16
	CtrPort  uint16
	CtrIP    netip.Addr
}

// Sandbox is a container's network namespace and what is attached to it.
type Sandbox struct {
	ContainerID string
	Name        string // container name, resolvable on user-defined networks
	Hostname    string
	NetNS       string
	Endpoints   []*Endpoint
	Ports       []Port   `json:",omitempty"`
	DNS         []string `json:",omitempty"` // the container's own upstream servers (--dns)
}

// EndpointRequest asks for an attachment to Network (a name or an ID).
type EndpointRequest struct {
	Network string
	IP      string // static IPv4 address, or ""
	MAC     string
	Aliases []string
}

// PortRequest is one port to publish; HostPort 0 takes a free one.
type PortRequest struct {
	Proto    string
	HostIP   string
	HostPort uint16
	CtrPort  uint16
}

// SandboxRequest asks for a container's network at start.
type SandboxRequest struct {
	ContainerID string
	Name        string
	Hostname    string
	Endpoints   []EndpointRequest // the first with a gateway gives the default route
	Ports       []PortRequest
	DNS         []string
}

// CreateRequest asks for a new network.
type CreateRequest struct {
	Name       string
	Driver     string
	Subnet     string
	Gateway    string
	IPRange    string
	Internal   bool
	Attachable bool
	Labels     map[string]string
	Options    map[string]string
	// CheckDuplicate is always on: names are unique in Berth.
}
