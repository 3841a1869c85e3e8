package overlay

import (
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// A container on two overlay networks finds the services of both through the server it asks; one on a
// single network finds only that network's.
func TestResolveAcrossNetworks(t *testing.T) {
	a, b := netip.MustParseAddr, netip.MustParseAddr
	d := &Driver{nets: map[string]*netState{
		"na": {eps: map[netip.Addr]*Endpoint{a("10.0.1.5"): {NetNS: "/ns/c1"}, a("10.0.1.6"): {NetNS: "/ns/c2"}},
			services: map[string]*Service{"web": {Name: "web", VIP: a("10.0.1.2"), Backends: []netip.Addr{a("10.0.1.7")}}}},
		"nb": {eps: map[netip.Addr]*Endpoint{b("10.0.2.5"): {NetNS: "/ns/c1"}},
			services: map[string]*Service{"db": {Name: "db", Backends: []netip.Addr{b("10.0.2.8"), b("10.0.2.9")}}}},
	}}
	ask := func(net, name string, from string) []string {
		ok, rrs, _ := d.resolve(net, dns.Question{Name: name + ".", Qtype: dns.TypeA, Qclass: dns.ClassINET}, a(from))
		if !ok {
			return nil
		}
		var out []string
		for _, rr := range rrs {
			out = append(out, rr.(*dns.A).A.String())
		}
		return out
	}
	if got := ask("na", "db", "10.0.1.5"); len(got) != 2 {
		t.Fatalf("db from c1 (on both networks) through na's server: %v", got)
	}
	if got := ask("na", "tasks.web", "10.0.1.5"); len(got) != 1 || got[0] != "10.0.1.7" {
		t.Fatalf("tasks.web: %v", got)
	}
	if got := ask("na", "web", "10.0.1.5"); len(got) != 1 || got[0] != "10.0.1.2" {
		t.Fatalf("web: %v", got)
	}
	if got := ask("na", "db", "10.0.1.6"); got != nil {
		t.Fatalf("db from c2 (not on nb): %v", got)
	}
}
