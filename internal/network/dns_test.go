package network

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
)

// TestResolveLocal checks the embedded DNS server's view: names, aliases and short IDs of containers on
// the asking container's networks, nothing from other networks, and forwarding to the asker's --dns.
func TestResolveLocal(t *testing.T) {
	s := &Service{log: slog.Default(), nets: map[string]*Network{
		"n1": {ID: "n1", Name: "front"}, "n2": {ID: "n2", Name: "back"}, "n3": {ID: "n3", Name: "other"},
	}, sbs: map[string]*Sandbox{}, upstream: []string{"192.0.2.53"}}
	add := func(id, name string, dnsServers []string, eps ...*Endpoint) {
		s.sbs[id] = &Sandbox{ContainerID: id, Name: name, DNS: dnsServers, Endpoints: eps}
	}
	ip := netip.MustParseAddr
	add("aaaaaaaaaaaa11", "web", nil, &Endpoint{NetworkID: "n1", Network: "front", IP: ip("10.0.1.2"), Aliases: []string{"www"}})
	add("bbbbbbbbbbbb22", "app", []string{"10.9.9.9"},
		&Endpoint{NetworkID: "n1", Network: "front", IP: ip("10.0.1.3")},
		&Endpoint{NetworkID: "n2", Network: "back", IP: ip("10.0.2.3")})
	add("cccccccccccc33", "db", nil, &Endpoint{NetworkID: "n2", Network: "back", IP: ip("10.0.2.4"), Aliases: []string{"www"}})
	add("dddddddddddd44", "secret", nil, &Endpoint{NetworkID: "n3", Network: "other", IP: ip("10.0.3.2")})

	q := func(name string, typ uint16) dns.Question {
		return dns.Question{Name: name + ".", Qtype: typ, Qclass: dns.ClassINET}
	}
	ips := func(rrs []dns.RR) map[string]bool {
		m := map[string]bool{}
		for _, rr := range rrs {
			if a, ok := rr.(*dns.A); ok {
				m[a.A.String()] = true
			}
		}
		return m
	}
	// web asks front's server: it sees front only.
	known, ans, up := s.resolveLocal("n1", q("WWW", dns.TypeA), ip("10.0.1.2"))
	if !known || len(ans) != 1 || !ips(ans)["10.0.1.2"] || up[0] != "192.0.2.53" {
		t.Fatalf("web resolving www: %v %v %v", known, ans, up)
	}
	if known, _, _ := s.resolveLocal("n1", q("db", dns.TypeA), ip("10.0.1.2")); known {
		t.Fatal("web is not on back and must not find db")
	}
	// app is on both networks: the alias spans them, and its own upstream applies.
	known, ans, up = s.resolveLocal("n1", q("www", dns.TypeA), ip("10.0.1.3"))
	if !known || !ips(ans)["10.0.1.2"] || !ips(ans)["10.0.2.4"] || up[0] != "10.9.9.9" {
		t.Fatalf("app resolving www: %v %v %v", known, ans, up)
	}
	if known, _, _ := s.resolveLocal("n1", q("cccccccccccc", dns.TypeA), ip("10.0.1.3")); !known {
		t.Fatal("short IDs resolve")
	}
	if known, _, _ := s.resolveLocal("n1", q("secret", dns.TypeA), ip("10.0.1.3")); known {
		t.Fatal("a network the asker is not on leaked")
	}
	// AAAA for one of our names: known, no answer (no IPv6), so the client does not ask upstream.
	if known, ans, _ := s.resolveLocal("n1", q("web", dns.TypeAAAA), ip("10.0.1.3")); !known || len(ans) != 0 {
		t.Fatalf("AAAA: %v %v", known, ans)
	}
	rev, _ := dns.ReverseAddr("10.0.2.4")
	known, ans, _ = s.resolveLocal("n2", dns.Question{Name: rev, Qtype: dns.TypePTR}, ip("10.0.2.3"))
	if !known || len(ans) != 1 || ans[0].(*dns.PTR).Ptr != "db.back." {
		t.Fatalf("PTR: %v %v", known, ans)
	}
}
