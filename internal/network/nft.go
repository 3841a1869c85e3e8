package network

import (
	"fmt"
	"net"
	"sort"

	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// applyRules rewrites Berth's nftables table from the recorded state in one transaction: the table is
// added (a no-op when present), deleted and built again in the same batch, so the kernel never runs with
// half a rule set and rules of a crashed earlier run cannot linger. Established connections keep their
// NAT mappings: conntrack holds them, not the rules.
//
//	postrouting (srcnat): masquerade each non-internal network's traffic that leaves its bridge, traffic
//	                      DNATed from 127.0.0.1 into a bridge, and hairpin traffic (container to a port
//	                      published by a container on the same bridge)
//	prerouting, output (dstnat): to a local address -> jump ports
//	ports: per published port, [ip daddr H] proto dport P -> dnat to container:port
//	forward (filter): drop between different Berth bridges, and into or out of internal networks
//
// Called with s.mu held.
func (s *Service) applyRules() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.table}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)

	accept := nftables.ChainPolicyAccept
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	pre := c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
	out := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
	ports := c.AddChain(&nftables.Chain{Name: "ports", Table: t})
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})

	rule := func(ch *nftables.Chain, parts ...[]expr.Any) {
		var e []expr.Any
		for _, p := range parts {
			e = append(e, p...)
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e})
	}

	var bridges []*Network
	for _, n := range s.nets {
		if n.Driver == DriverBridge {
			bridges = append(bridges, n)
		}
	}
	sort.Slice(bridges, func(i, j int) bool { return bridges[i].Bridge < bridges[j].Bridge })

	masq := []expr.Any{&expr.Masq{}}
	for _, n := range bridges {
		br := plumbing.IfName(n.Bridge)
		if !n.Internal {
			rule(post, srcInPrefix(n), plumbing.OifNot(br), masq)
		}
		rule(post, srcInLoopback(), plumbing.OifIs(br), masq)
		rule(post, plumbing.IifIs(br), plumbing.OifIs(br), plumbing.CtStatusDNAT(), masq)
	}
	toLocal := []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: plumbing.NativeU32(unix.RTN_LOCAL)},
		&expr.Verdict{Kind: expr.VerdictJump, Chain: "ports"},
	}
	rule(pre, toLocal)
	rule(out, toLocal)

	for _, p := range s.allPorts() {
		e := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{plumbing.ProtoNum(p.Proto)}},
		}
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			a := p.HostIP.As4()
			e = append(e,
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]})
		}
		ip := p.CtrIP.As4()
		// A container reaching its own published port through the host: the reply would come from its
		// own address and be dropped as martian, so the source becomes the gateway. With br_netfilter
		// the packet is bridged and postrouting sees no input interface, so match on the addresses.
		rule(post, []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ip[:]},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{plumbing.ProtoNum(p.Proto)}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: plumbing.BigU16(p.CtrPort)},
		}, masq)
		e = append(e,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: plumbing.BigU16(p.HostPort)},
			&expr.Immediate{Register: 1, Data: ip[:]},
			&expr.Immediate{Register: 2, Data: plumbing.BigU16(p.CtrPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		)
		rule(ports, e)
	}

	drop := []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}
	for _, a := range bridges {
		if a.Internal {
			rule(fwd, plumbing.IifIs(plumbing.IfName(a.Bridge)), plumbing.OifNot(plumbing.IfName(a.Bridge)), drop)
			rule(fwd, plumbing.OifIs(plumbing.IfName(a.Bridge)), plumbing.IifNot(plumbing.IfName(a.Bridge)), drop)
		}
		for _, b := range bridges {
			if a != b {
				rule(fwd, plumbing.IifIs(plumbing.IfName(a.Bridge)), plumbing.OifIs(plumbing.IfName(b.Bridge)), drop)
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: writing table %s: %w", s.table, err)
	}
	return nil
}

// allPorts lists every sandbox's published ports in a stable order.
func (s *Service) allPorts() []Port {
	var out []Port
	for _, sb := range s.sbs {
		out = append(out, sb.Ports...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].HostPort != out[j].HostPort {
			return out[i].HostPort < out[j].HostPort
		}
		return out[i].Proto < out[j].Proto
	})
	return out
}

func srcInPrefix(n *Network) []expr.Any {
	a := n.Subnet.Masked().Addr().As4()
	m := net.CIDRMask(n.Subnet.Bits(), 32)
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: m, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a[:]},
	}
}

func srcInLoopback() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{127}},
	}
}
