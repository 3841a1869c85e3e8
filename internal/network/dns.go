package network

import (
	"bufio"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsServer answers for one user-defined network on its gateway address, port 53: container names,
// network aliases and short IDs of the containers attached to it, and reverse lookups of their addresses.
// Everything else goes to the asking container's own --dns servers, or the host's resolvers. Listening
// on the gateway (rather than inside each container, as Docker does) costs nothing per container, and the
// listener a query arrives on tells which network asks.
type dnsServer struct {
	udp, tcp *dns.Server
}

func (d *dnsServer) close() {
	if d.udp != nil {
		_ = d.udp.Shutdown()
	}
	if d.tcp != nil {
		_ = d.tcp.Shutdown()
	}
}

// startDNS starts n's server if n is a user-defined bridge. Called with s.mu held. A failure (say,
// another resolver holds port 53 on every address) is logged: containers then get the host's
// resolvers instead and cannot find each other by name.
func (s *Service) startDNS(n *Network) {
	if n.Driver != DriverBridge || n.Default || s.dns[n.ID] != nil {
		return
	}
	addr := net.JoinHostPort(n.Gateway.String(), "53")
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		s.log.Warn("embedded DNS unavailable", "network", n.Name, "err", err)
		return
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		pc.Close()
		s.log.Warn("embedded DNS unavailable", "network", n.Name, "err", err)
		return
	}
	id := n.ID
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { s.serveDNS(id, w, q) })
	d := &dnsServer{
		udp: &dns.Server{PacketConn: pc, Handler: h},
		tcp: &dns.Server{Listener: l, Handler: h},
	}
	go func() { _ = d.udp.ActivateAndServe() }()
	go func() { _ = d.tcp.ActivateAndServe() }()
	s.dns[n.ID] = d
}

// HasDNS reports whether network id has an embedded DNS server running; its address is the gateway.
func (s *Service) HasDNS(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dns[id] != nil
}

func (s *Service) serveDNS(networkID string, w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	question := q.Question[0]
	from := remoteAddr(w)
	known, answers, upstream := s.resolveLocal(networkID, question, from)
	if !known {
		s.forward(w, q, upstream)
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
	if question.Qtype == dns.TypeA || question.Qtype == dns.TypeANY {
		// Several containers behind one alias: a different order each time spreads the clients.
		rand.Shuffle(len(ips), func(i, j int) { ips[i], ips[j] = ips[j], ips[i] })
		for _, ip := range ips {
			answers = append(answers, &dns.A{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: net.IP(ip.AsSlice())})
		}
	}
	return true, answers, upstream
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

func (s *Service) forward(w dns.ResponseWriter, q *dns.Msg, upstream []string) {
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
