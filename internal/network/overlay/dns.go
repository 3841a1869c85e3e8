package overlay

import (
	"net/netip"
	"strings"

	"github.com/berth-dev/berth/internal/network"
	"github.com/miekg/dns"
)

// resolve answers the DNS server of network id: <service> is its VIP (its backends when it has no
// VIP), tasks.<service> its backends. A container on several overlay networks asks the server of one of
// them and finds the services of all (as in Docker); each network answers with its own addresses.
// Short TTLs: backends come and go with tasks. Everything else goes upstream.
func (d *Driver) resolve(id string, q dns.Question, from netip.Addr) (bool, []dns.RR, []string) {
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	d.mu.Lock()
	defer d.mu.Unlock()
	upstream := d.cfg.Upstream
	st := d.nets[id]
	if st == nil {
		return false, nil, upstream
	}
	nets := []*netState{st}
	if ep := st.eps[from]; ep != nil {
		for _, oid := range d.sortedNets() {
			if o := d.nets[oid]; o != st && o.hasNetNS(ep.NetNS) {
				nets = append(nets, o)
			}
		}
	}
	for _, n := range nets {
		if ips, ok := lookupService(n, name); ok {
			return true, network.AddressAnswers(q, ips, 5), upstream
		}
	}
	return false, nil, upstream
}

func lookupService(st *netState, name string) ([]netip.Addr, bool) {
	if svc := st.services[name]; svc != nil {
		if svc.VIP.IsValid() {
			return []netip.Addr{svc.VIP}, true
		}
		return svc.Backends, true
	}
	if rest, ok := strings.CutPrefix(name, "tasks."); ok {
		if svc := st.services[rest]; svc != nil {
			return svc.Backends, true
		}
	}
	return nil, false
}

func (st *netState) hasNetNS(ns string) bool {
	for _, ep := range st.eps {
		if ep.NetNS == ns {
			return true
		}
	}
	return false
}
