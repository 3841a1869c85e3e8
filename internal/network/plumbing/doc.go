// Package plumbing holds the kernel plumbing that Berth's network drivers share (the bridge driver in
// package network, the overlay driver in network/overlay): network namespaces pinned by bind mounts,
// running code inside a namespace, addresses and MACs, and the small nftables expressions their rule
// sets are built from. It keeps no state of its own.
package plumbing
