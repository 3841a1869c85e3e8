package overlay

import (
	"net/netip"
	"strings"

	"github.com/berth-dev/berth/internal/network"
	"github.com/miekg/dns"
)

// resolve answers the DNS server of network id: <service> is its VIP (its backends when it has no
// VIP), tasks.<service> its backends. Short TTLs: backends come and go with tasks. Everything else goes
// upstream.
func (d *Driver) resolve(id string, q dns.Question, _ netip.Addr) (bool, []dns.RR, []string) {
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	d.mu.Lock()
	defer d.mu.Unlock()
	upstream := d.cfg.Upstream
	st := d.nets[id]
	if st == nil {
		return false, nil, upstream
	}
	var ips []netip.Addr
	if svc := st.services[name]; svc != nil {
		if svc.VIP.IsValid() {
			ips = []netip.Addr{svc.VIP}
		} else {
			ips = svc.Backends
		}
	} else if svc := st.services[strings.TrimPrefix(name, "tasks.")]; svc != nil && strings.HasPrefix(name, "tasks.") {
		ips = svc.Backends
	} else {
		return false, nil, upstream
	}
	return true, network.AddressAnswers(q, ips, 5), upstream
}
