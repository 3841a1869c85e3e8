package network

import (
	"bufio"
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/miekg/dns"
)

// The embedded DNS server answers for one network on one address, port 53, from a Resolver; questions
// the resolver does not know go upstream. The bridge driver runs one per user-defined network on its
// gateway, answering container names, network aliases and short IDs of the containers attached to it,
// and reverse lookups of their addresses. Listening on the gateway (rather than inside each container,
// as Docker does) costs nothing per container, and the listener a query arrives on tells which network
// asks. The overlay driver (network/overlay) runs the same server inside each overlay network's
// namespace with a resolver of its own (service names and their tasks).

// Resolver answers the questions an embedded DNS server receives. known is false when the name is not
// one of the resolver's: the question then goes to upstream (the asking client's own --dns servers, or
// the host's resolvers).
type Resolver interface {
	Resolve(q dns.Question, from netip.Addr) (known bool, answers []dns.RR, upstream []string)
}

// ResolverFunc is a function that is a Resolver.
type ResolverFunc func(q dns.Question, from netip.Addr) (known bool, answers []dns.RR, upstream []string)

// Resolve calls f.
func (f ResolverFunc) Resolve(q dns.Question, from netip.Addr) (bool, []dns.RR, []string) {
	return f(q, from)
}

// DNSServer is one embedded DNS server (UDP and TCP).
type DNSServer struct {
	udp, tcp *dns.Server
}

// StartDNS starts a server on addr, port 53, answering from r. The sockets are opened inside the network
// namespace pinned at nsPath ("" = the caller's own) and stay there.
func StartDNS(nsPath string, addr netip.Addr, r Resolver) (*DNSServer, error) {
	var pc net.PacketConn
	var l net.Listener
	listen := func() error {
		hp := net.JoinHostPort(addr.String(), "53")
		var err error
		if pc, err = net.ListenPacket("udp4", hp); err != nil {
			return err
		}
		if l, err = net.Listen("tcp4", hp); err != nil {
			pc.Close()
			return err
		}
		return nil
	}
	var err error
	if nsPath == "" {
		err = listen()
	} else {
		err = plumbing.Do(nsPath, listen)
	}
	if err != nil {
		return nil, err
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { serveDNS(r, w, q) })
	d := &DNSServer{
		udp: &dns.Server{PacketConn: pc, Handler: h},
		tcp: &dns.Server{Listener: l, Handler: h},
	}
	go func() { _ = d.udp.ActivateAndServe() }()
	go func() { _ = d.tcp.ActivateAndServe() }()
	return d, nil
}

// Close stops the server. It waits a moment at most for answers in flight: their resolver may be
// waiting for a lock that Close's caller holds.
func (d *DNSServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if d.udp != nil {
		_ = d.udp.ShutdownContext(ctx)
	}
	if d.tcp != nil {
		_ = d.tcp.ShutdownContext(ctx)
	}
}

// startDNS starts n's server if n is a user-defined bridge. Called with s.mu held. A failure (say,
// another resolver holds port 53 on every address) is logged: containers then get the host's
// resolvers instead and cannot find each other by name.
func (s *Service) startDNS(n *Network) {
	if n.Driver != DriverBridge || n.Default || s.dns[n.ID] != nil {
		return
	}
	id := n.ID
	d, err := StartDNS("", n.Gateway, ResolverFunc(func(q dns.Question, from netip.Addr) (bool, []dns.RR, []string) {
		return s.resolveLocal(id, q, from)
	}))
	if err != nil {
		s.log.Warn("embedded DNS unavailable", "network", n.Name, "err", err)
		return
	}
	s.dns[n.ID] = d
}

// HasDNS reports whether network id has an embedded DNS server running; its address is the gateway.
func (s *Service) HasDNS(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.nets[id]; n != nil && n.Driver == DriverOverlay {
		return n.Gateway.IsValid() // the overlay driver serves names on the gateway
	}
	return s.dns[id] != nil
}

func serveDNS(r Resolver, w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	known, answers, upstream := r.Resolve(q.Question[0], remoteAddr(w))
	if !known {
		forward(w, q, upstream)
		return
	}
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	m.RecursionAvailable = true
	m.Answer = answers
	_ = w.WriteMsg(m)
}

func remoteAddr(w dns.ResponseWriter) netip.Addr {
	if ap, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// resolveLocal answers question from the network's containers. known is false when the name is not
// one of ours; upstream then lists where to forward it.
func (s *Service) resolveLocal(networkID string, question dns.Question, from netip.Addr) (known bool, answers []dns.RR, upstream []string) {
	name := strings.ToLower(strings.TrimSuffix(question.Name, "."))
	s.mu.Lock()
	defer s.mu.Unlock()
	// A container on several networks finds the containers of all of them, whichever server it asks.
	nets := map[string]bool{networkID: true}
	for _, sb := range s.sbs {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == networkID && ep.IP == from {
				if len(sb.DNS) > 0 {
					upstream = sb.DNS
				}
				for _, other := range sb.Endpoints {
					if n := s.nets[other.NetworkID]; n != nil && !n.Default {
						nets[other.NetworkID] = true
					}
				}
			}
		}
	}
	var ips []netip.Addr
	var ptr []string
	for _, sb := range s.sbs {
		for _, ep := range sb.Endpoints {
			if !nets[ep.NetworkID] {
				continue
			}
			if question.Qtype == dns.TypePTR {
				if rev, _ := dns.ReverseAddr(ep.IP.String()); strings.EqualFold(rev, question.Name) {
					ptr = append(ptr, sb.Name+"."+ep.Network+".")
				}
				continue
			}
			if dnsNames(sb, ep)[name] {
				ips = append(ips, ep.IP)
			}
		}
	}
	if upstream == nil {
		upstream = s.upstream
	}
	if len(ips) == 0 && len(ptr) == 0 {
		return false, nil, upstream
	}
	ttl := uint32(600)
	for _, p := range ptr {
		answers = append(answers, &dns.PTR{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: p})
	}
	answers = append(answers, AddressAnswers(question, ips, ttl)...)
	return true, answers, upstream
}

// AddressAnswers answers an A (or ANY) question for a name with ips, in a different order each time so
// that clients of a name with several addresses spread over them; other question types get none.
func AddressAnswers(question dns.Question, ips []netip.Addr, ttl uint32) []dns.RR {
	if question.Qtype != dns.TypeA && question.Qtype != dns.TypeANY {
		return nil
	}
	ips = append([]netip.Addr(nil), ips...)
	rand.Shuffle(len(ips), func(i, j int) { ips[i], ips[j] = ips[j], ips[i] })
	var out []dns.RR
	for _, ip := range ips {
		out = append(out, &dns.A{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.IP(ip.AsSlice())})
	}
	return out
}

func dnsNames(sb *Sandbox, ep *Endpoint) map[string]bool {
	names := map[string]bool{strings.ToLower(sb.Name): true, shortID(sb.ContainerID): true}
	if sb.Hostname != "" {
		names[strings.ToLower(sb.Hostname)] = true
	}
	for _, a := range ep.Aliases {
		names[strings.ToLower(a)] = true
	}
	return names
}

func forward(w dns.ResponseWriter, q *dns.Msg, upstream []string) {
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	c := &dns.Client{Net: proto, Timeout: 3 * time.Second}
	for _, server := range upstream {
		resp, _, err := c.Exchange(q, net.JoinHostPort(server, "53"))
		if err != nil {
			continue
		}
		_ = w.WriteMsg(resp)
		return
	}
	m := new(dns.Msg)
	m.SetRcode(q, dns.RcodeServerFailure)
	_ = w.WriteMsg(m)
}

// hostNameservers reads the nameserver lines of a resolv.conf.
func hostNameservers(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "nameserver" {
			out = append(out, fields[1])
		}
	}
	return out
}
