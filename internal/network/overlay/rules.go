package overlay

import (
	"fmt"
	"net/netip"
	"os"
	"sort"

	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The driver's rules live in one table (Config.Table) per namespace it touches, each rewritten whole
// in one batch from the driver's state (add, delete, add again, as package network does): the kernel
// never runs half a rule set, and a rewrite after a restart replaces whatever an earlier run left.
//
//	container namespace  output (dstnat): ip daddr VIP [l4proto P th dport T] dnat to numgen inc mod N map @bK
//	                     output (filter): ip daddr VIP reject (what no rule above took: no backend, port not served)
//	host namespace       prerouting, output (dstnat): fib daddr type local l4proto P th dport PUB
//	                                                  dnat to numgen inc mod N map @bK : T
//	                     forward (filter): oifname ov<net> and not ct status dnat: drop (only published
//	                                       ports lead from the host into an overlay)
//	overlay namespace    postrouting (srcnat): iifname gw0 oifname br0 snat to NodeIP
//	                     forward (filter): iifname br0 oifname gw0 and not established/related: drop

// table is one rule set being built.
type table struct {
	c    *nftables.Conn
	t    *nftables.Table
	sets int
}

// writeTable replaces table name in the namespace at ns ("" = the caller's) with what build adds;
// a nil build deletes it.
func writeTable(ns, name string, build func(*table) error) error {
	var opts []nftables.ConnOption
	if ns != "" {
		fd, err := plumbing.OpenNetNS(ns)
		if err != nil {
			return err
		}
		defer fd.Close()
		opts = append(opts, nftables.WithNetNSFd(int(fd)))
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: name}
	c.AddTable(t)
	c.DelTable(t)
	if build != nil {
		c.AddTable(t)
		if err := build(&table{c: c, t: t}); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: writing table %s: %w", name, err)
	}
	return nil
}

func (t *table) chain(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return t.c.AddChain(&nftables.Chain{Name: name, Table: t.t, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept})
}

func (t *table) rule(ch *nftables.Chain, parts ...[]expr.Any) {
	var e []expr.Any
	for _, p := range parts {
		e = append(e, p...)
	}
	t.c.AddRule(&nftables.Rule{Table: t.t, Chain: ch, Exprs: e})
}

// balance is "dnat to numgen inc mod N map { 0 : b0, ... }" (": port" when port is not 0), through a
// map of its own. Round robin, as IPVS's default; conntrack keeps each connection on its backend.
func (t *table) balance(backends []netip.Addr, port uint16) ([]expr.Any, error) {
	t.sets++
	set := &nftables.Set{Table: t.t, Name: fmt.Sprintf("b%d", t.sets), IsMap: true,
		KeyType: nftables.TypeInteger, DataType: nftables.TypeIPAddr, KeyByteOrder: binaryutil.NativeEndian}
	elems := make([]nftables.SetElement, len(backends))
	for i, b := range backends {
		a := b.As4()
		elems[i] = nftables.SetElement{Key: plumbing.NativeU32(uint32(i)), Val: a[:]}
	}
	if err := t.c.AddSet(set, elems); err != nil {
		return nil, err
	}
	e := []expr.Any{
		&expr.Numgen{Register: 1, Modulus: uint32(len(backends)), Type: unix.NFT_NG_INCREMENTAL},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: set.Name, SetID: set.ID},
	}
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1}
	if port != 0 {
		e = append(e, &expr.Immediate{Register: 2, Data: plumbing.BigU16(port)})
		nat.RegProtoMin, nat.Specified = 2, true
	}
	return append(e, nat), nil
}

// writeContainerTable rewrites the VIP rules of the container namespace ns from every network it is
// attached to. Called with d.mu held. A namespace that is gone needs no rules.
func (d *Driver) writeContainerTable(ns string) error {
	if _, err := os.Stat(ns); err != nil {
		return nil
	}
	var svcs []*Service
	for _, id := range d.sortedNets() {
		st := d.nets[id]
		attached := false
		for _, ep := range st.eps {
			attached = attached || ep.NetNS == ns
		}
		if !attached {
			continue
		}
		for _, name := range sortedKeys(st.services) {
			if s := st.services[name]; s.VIP.IsValid() {
				svcs = append(svcs, s)
			}
		}
	}
	if len(svcs) == 0 {
		return writeTable(ns, d.cfg.Table, nil)
	}
	return writeTable(ns, d.cfg.Table, func(t *table) error {
		nat := t.chain("output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
		filter := t.chain("reject", nftables.ChainTypeFilter, nftables.ChainHookOutput, nftables.ChainPriorityFilter)
		for _, s := range svcs {
			if len(s.Backends) > 0 {
				lb, err := t.balance(s.Backends, 0)
				if err != nil {
					return err
				}
				if len(s.Ports) == 0 {
					t.rule(nat, plumbing.DstAddr(s.VIP), lb)
				}
				for _, p := range s.Ports {
					t.rule(nat, plumbing.DstAddr(s.VIP), plumbing.L4Proto(p.Proto), plumbing.DstPort(p.Target), lb)
				}
			}
			// Left over for the VIP itself: refused at once rather than unanswered ARP.
			t.rule(filter, plumbing.DstAddr(s.VIP), []expr.Any{
				&expr.Reject{Type: unix.NFT_REJECT_ICMP_UNREACH, Code: 3 /* port unreachable */}})
		}
		return nil
	})
}

// writeHostTable rewrites the published ports of every network on this host. Called with d.mu held.
func (d *Driver) writeHostTable() error {
	type pub struct {
		p        Port
		backends []netip.Addr
	}
	var pubs []pub
	var gws []string
	for _, id := range d.sortedNets() {
		st := d.nets[id]
		if !st.spec.NodeIP.IsValid() {
			continue
		}
		gws = append(gws, d.names(id).hostEnd)
		for _, name := range sortedKeys(st.services) {
			s := st.services[name]
			for _, p := range publishedPorts(s) {
				backends := s.Backends
				if p.Mode == ModeHost {
					backends = nil
					for _, b := range s.Backends {
						if st.eps[b] != nil {
							backends = append(backends, b)
						}
					}
				}
				if len(backends) > 0 {
					pubs = append(pubs, pub{p, backends})
				}
			}
		}
	}
	if len(gws) == 0 {
		return writeTable(d.cfg.HostNS, d.cfg.Table, nil)
	}
	return writeTable(d.cfg.HostNS, d.cfg.Table, func(t *table) error {
		pre := t.chain("prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
		out := t.chain("output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
		post := t.chain("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
		hop := hostHop.As4()
		for _, gw := range gws {
			// Connections from the host's loopback address (curl localhost:PORT) cannot leave with
			// it: they take the address the overlay namespace routes back to.
			t.rule(post, []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{127}},
			}, plumbing.OifIs(plumbing.IfName(gw)), []expr.Any{
				&expr.Immediate{Register: 1, Data: hop[:]},
				&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
			})
		}
		fwd := t.chain("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
		for _, x := range pubs {
			lb, err := t.balance(x.backends, x.p.Target)
			if err != nil {
				return err
			}
			match := [][]expr.Any{plumbing.ToLocal(), plumbing.L4Proto(x.p.Proto), plumbing.DstPort(x.p.Published), lb}
			t.rule(pre, match...)
			t.rule(out, match...)
		}
		for _, gw := range gws {
			t.rule(fwd, plumbing.OifIs(plumbing.IfName(gw)), notCtStatusDNAT(), []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}})
		}
		return nil
	})
}

// writeOverlayTable writes the rules of an overlay namespace, which depend on its spec only.
func writeOverlayTable(ns, name string, spec Spec) error {
	if !spec.NodeIP.IsValid() {
		return writeTable(ns, name, nil)
	}
	return writeTable(ns, name, func(t *table) error {
		post := t.chain("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
		fwd := t.chain("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
		node := spec.NodeIP.As4()
		t.rule(post, plumbing.IifIs(plumbing.IfName(gwName)), plumbing.OifIs(plumbing.IfName(bridgeName)), []expr.Any{
			&expr.Immediate{Register: 1, Data: node[:]},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1},
		})
		t.rule(fwd, plumbing.IifIs(plumbing.IfName(bridgeName)), plumbing.OifIs(plumbing.IfName(gwName)), []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
				Mask: plumbing.NativeU32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: plumbing.NativeU32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: plumbing.NativeU32(0)},
			&expr.Verdict{Kind: expr.VerdictDrop},
		})
		return nil
	})
}

// notCtStatusDNAT matches connections whose destination was not rewritten.
func notCtStatusDNAT() []expr.Any {
	e := plumbing.CtStatusDNAT()
	e[len(e)-1] = &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: plumbing.NativeU32(0)}
	return e
}

func (d *Driver) sortedNets() []string { return sortedKeys(d.nets) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
