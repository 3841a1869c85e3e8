// Package network gives containers their network: bridge networks (the default one and user-defined
// ones) with IP address management, outbound NAT, published ports and isolation between networks, an
// embedded DNS server per user-defined network, and the host and none modes.
//
// Each bridged container gets a network namespace that berthd creates and pins under the exec root
// before the container starts; the container's init joins it by path. Links are made through netlink
// and packet rules live in one nftables table of Berth's own, rewritten atomically from the recorded
// state whenever networks or published ports change. Networks and each container's sandbox (namespace,
// endpoints, addresses, ports) are recorded in the metadata database, so a restarted berthd finds every
// running container's network as it left it and can tear it down later.
package network
