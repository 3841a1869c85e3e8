package network

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/vishvananda/netlink"
)

// pool hands out a network's IPv4 addresses. Dynamic addresses come round-robin from the range, after
// the last one given, so an address just released is not reused at once: a container that has just
// stopped may still be in ARP caches and in the bridge's forwarding table.
type pool struct {
	subnet  netip.Prefix
	rng     netip.Prefix
	gateway netip.Addr
	used    map[netip.Addr]bool
	last    netip.Addr
}

func newPool(n *Network) *pool {
	r := n.IPRange
	if !r.IsValid() {
		r = n.Subnet
	}
	return &pool{subnet: n.Subnet, rng: r, gateway: n.Gateway, used: map[netip.Addr]bool{}}
}

func (p *pool) take(a netip.Addr) { p.used[a] = true }

func (p *pool) release(a netip.Addr) { delete(p.used, a) }

// usable reports whether a can be given to a container: in the subnet, not its network or broadcast
// address, not the gateway.
func (p *pool) usable(a netip.Addr) bool {
	if !p.subnet.Contains(a) || a == p.gateway || a == p.subnet.Addr() || a == broadcast(p.subnet) {
		return false
	}
	return true
}

// allocate takes want if given (a static address), or the next free one.
func (p *pool) allocate(want netip.Addr) (netip.Addr, error) {
	if want.IsValid() {
		if !p.subnet.Contains(want) {
			return netip.Addr{}, errdefs.InvalidParameter(fmt.Errorf("no configured subnet or ip-range contain the IP address %s", want))
		}
		if !p.usable(want) || p.used[want] {
			return netip.Addr{}, errdefs.Conflict(fmt.Errorf("Address already in use"))
		}
		p.used[want] = true
		return want, nil
	}
	first := p.rng.Masked().Addr()
	size := 1 << (32 - p.rng.Bits())
	a := p.last
	for i := 0; i < size; i++ {
		if a.IsValid() && p.rng.Contains(a) {
			a = a.Next()
		}
		if !a.IsValid() || !p.rng.Contains(a) {
			a = first
		}
		if p.usable(a) && !p.used[a] {
			p.used[a] = true
			p.last = a
			return a, nil
		}
	}
	return netip.Addr{}, errdefs.Unavailable(errors.New("no available IPv4 addresses on this network's address pools"))
}

func broadcast(p netip.Prefix) netip.Addr { return plumbing.Broadcast(p) }

// candidatePools are Docker's default address pools, in its order: 172.17-31.0.0/16, then
// 192.168.0-240.0/20.
func candidatePools() []netip.Prefix {
	var out []netip.Prefix
	for i := 17; i <= 31; i++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16))
	}
	for i := 0; i <= 240; i += 16 {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20))
	}
	return out
}

// freeSubnet picks the first default pool that overlaps neither another network nor a host route.
func (s *Service) freeSubnet() (netip.Prefix, error) {
	taken := s.takenPrefixes()
	for _, c := range candidatePools() {
		if !overlapsAny(c, taken) {
			return c, nil
		}
	}
	return netip.Prefix{}, errdefs.Unavailable(errors.New("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"))
}

func (s *Service) takenPrefixes() []netip.Prefix {
	var taken []netip.Prefix
	for _, n := range s.nets {
		if n.Subnet.IsValid() {
			taken = append(taken, n.Subnet)
		}
	}
	return append(taken, hostRoutes(s.bridgeNames())...)
}

func (s *Service) bridgeNames() map[string]bool {
	out := map[string]bool{}
	for _, n := range s.nets {
		if n.Bridge != "" {
			out[n.Bridge] = true
		}
	}
	return out
}

// hostRoutes lists the host's IPv4 routes other than default ones and our own bridges'.
func hostRoutes(ours map[string]bool) []netip.Prefix {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && ours[l.Attrs().Name] {
			continue
		}
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if !ok {
			continue
		}
		bits, _ := r.Dst.Mask.Size()
		if bits == 0 {
			continue
		}
		out = append(out, netip.PrefixFrom(a, bits).Masked())
	}
	return out
}

func overlapsAny(p netip.Prefix, others []netip.Prefix) bool {
	for _, o := range others {
		if p.Overlaps(o) {
			return true
		}
	}
	return false
}
