package overlay

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var (
	web1 = netip.MustParseAddr("10.200.0.10")
	web2 = netip.MustParseAddr("10.200.0.11")
	vip  = netip.MustParseAddr("10.200.0.100")
)

// setService sets svc on every host, as the cluster would.
func (l *lab) setService(id string, svc Service) {
	for _, h := range l.hosts {
		if h.d != nil {
			must(l.t, h.d.SetService(id, svc))
		}
	}
}

// The VIP spreads connections over backends on two hosts; a backend taken off the list gets no more
// of them at once; DNS answers the VIP and the tasks.
func TestServiceVIP(t *testing.T) {
	l := newLab(t, "a", "b")
	l.ensure("net1", 301)
	w1 := l.container("a", "net1", "web1", web1.String())
	w2 := l.container("b", "net1", "web2", web2.String())
	client := l.container("a", "net1", "client", "10.200.0.20")
	l.gossip()
	serve(t, w1, 80, "web1")
	serve(t, w2, 80, "web2")

	l.setService("net1", Service{Name: "web", VIP: vip, Ports: []Port{{Proto: "tcp", Target: 80}},
		Backends: []netip.Addr{web1, web2}})
	got := replies(t, client, "10.200.0.100:80", 10)
	if got["web1"] == 0 || got["web2"] == 0 || len(got) != 2 {
		t.Fatalf("VIP replies %v, want both backends", got)
	}
	t.Logf("VIP over two hosts: %v", got)

	// A port the service does not have is refused at once, not left unanswered.
	start := time.Now()
	if _, err := fetch(client, "10.200.0.100:81"); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("VIP on a port the service does not serve: %v, want connection refused", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("refusal took %s", time.Since(start))
	}

	assertDNS(t, client, "web", vip)
	assertDNS(t, client, "tasks.web", web1, web2)

	// A task dies: the next connections all go to the one left.
	l.setService("net1", Service{Name: "web", VIP: vip, Ports: []Port{{Proto: "tcp", Target: 80}},
		Backends: []netip.Addr{web2}})
	if got := replies(t, client, "10.200.0.100:80", 6); got["web2"] != 6 {
		t.Fatalf("after removing web1: %v", got)
	}
	assertDNS(t, client, "tasks.web", web2)

	// No backend at all: refused.
	l.setService("net1", Service{Name: "web", VIP: vip, Ports: []Port{{Proto: "tcp", Target: 80}}})
	if _, err := fetch(client, "10.200.0.100:80"); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("VIP without backends: %v, want connection refused", err)
	}

	// A container attached after the service was set gets its VIP too; every port when none are listed.
	l.setService("net1", Service{Name: "web", VIP: vip, Backends: []netip.Addr{web1, web2}})
	late := l.container("b", "net1", "late", "10.200.0.21")
	l.gossip()
	if got := replies(t, late, "10.200.0.100:80", 4); got["web1"] == 0 || got["web2"] == 0 {
		t.Fatalf("VIP from a container attached later: %v", got)
	}

	// Removed: the name goes, the VIP leads nowhere.
	for _, h := range l.hosts {
		if h.d != nil {
			must(t, h.d.RemoveService("net1", "web"))
		}
	}
	if ips := lookup(t, client, "web"); ips != nil {
		t.Errorf("removed service still resolves: %v", ips)
	}
	if hasTable(t, client, "berth-ovtest") {
		t.Error("VIP rules left in the client after the service went")
	}
}

// A service without a VIP (DNS round robin) resolves to its tasks.
func TestServiceDNSRR(t *testing.T) {
	l := newLab(t, "a")
	l.ensure("net1", 302)
	client := l.container("a", "net1", "client", "10.200.0.20")
	l.setService("net1", Service{Name: "db", Backends: []netip.Addr{web1, web2}})
	assertDNS(t, client, "db", web1, web2)
	assertDNS(t, client, "DB.", web1, web2)
}

// The routing mesh: a port published on host c, which runs no task, reaches the tasks on a and b;
// mode=host publishes only where a task runs.
func TestIngress(t *testing.T) {
	l := newLab(t, "a", "b", "c")
	l.ensure("ingress", 4096)
	w1 := l.container("a", "ingress", "web1", web1.String())
	w2 := l.container("b", "ingress", "web2", web2.String())
	l.gossip()
	serve(t, w1, 80, "web1")
	serve(t, w2, 80, "web2")
	l.setService("ingress", Service{Name: "web", VIP: vip, Backends: []netip.Addr{web1, web2},
		Ports: []Port{{Proto: "tcp", Target: 80, Published: 8080}}})

	ext := l.hosts["ext"].ns
	for _, h := range []string{"c", "a", "b"} {
		addr := l.hosts[h].underlay.String() + ":8080"
		got := replies(t, ext, addr, 6)
		if got["web1"] == 0 || got["web2"] == 0 || len(got) != 2 {
			t.Fatalf("published port on %s: %v, want both backends", h, got)
		}
		t.Logf("port 8080 on host %s: %v", h, got)
	}
	// From host c itself, to its own address.
	if got := replies(t, l.hosts["c"].ns, "10.99.0.12:8080", 4); got["web1"] == 0 || got["web2"] == 0 {
		t.Fatalf("published port from the host itself: %v", got)
	}

	// A backend gone: the mesh stops sending to it.
	l.setService("ingress", Service{Name: "web", VIP: vip, Backends: []netip.Addr{web2},
		Ports: []Port{{Proto: "tcp", Target: 80, Published: 8080}}})
	if got := replies(t, ext, "10.99.0.12:8080", 6); got["web2"] != 6 {
		t.Fatalf("after removing web1: %v", got)
	}

	// mode=host: open on a (its task runs there), not on c.
	l.setService("ingress", Service{Name: "admin", Backends: []netip.Addr{web1},
		Ports: []Port{{Proto: "tcp", Target: 80, Published: 9090, Mode: ModeHost}}})
	if got, err := fetch(ext, "10.99.0.10:9090"); err != nil || got != "web1" {
		t.Fatalf("mode=host port on the task's host: %q, %v", got, err)
	}
	if got, err := fetch(ext, "10.99.0.12:9090"); err == nil {
		t.Fatalf("mode=host port open on a host without a task: %q", got)
	}

	// Published ports lead into the overlay; nothing else routed through the host does, even from a
	// neighbour that routes the subnet to it.
	eh := l.handle(ext)
	defer eh.Close()
	eth0, err := eh.LinkByName("eth0")
	must(t, err)
	must(t, eh.RouteAdd(&netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: plumbing.IPNet(netip.MustParseAddr("10.200.0.0"), 24),
		Gw: net.ParseIP("10.99.0.12")}))
	if got, err := fetch(ext, "10.200.0.10:80"); err == nil {
		t.Fatalf("reached a task's overlay address through host c: %q", got)
	}
	if got := replies(t, ext, "10.99.0.12:8080", 2); got["web2"] != 2 {
		t.Fatalf("published port with the route in place: %v", got)
	}
}

// lookup asks the network's DNS server (the gateway) from namespace ns.
func lookup(t testing.TB, ns, name string) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	must(t, plumbing.Do(ns, func() error {
		c := &dns.Client{Timeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeA)
		r, _, err := c.Exchange(m, "10.200.0.1:53")
		if err != nil {
			return err
		}
		for _, rr := range r.Answer {
			if a, ok := rr.(*dns.A); ok {
				ip, _ := netip.AddrFromSlice(a.A.To4())
				out = append(out, ip)
			}
		}
		return nil
	}))
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

func assertDNS(t *testing.T, ns, name string, want ...netip.Addr) {
	t.Helper()
	if got := lookup(t, ns, name); !slices.Equal(got, want) {
		t.Errorf("%s resolves to %v, want %v", name, got, want)
	}
}

// A UDP flow to the VIP (one socket, one 5-tuple, so one conntrack entry) moves to a live backend as
// soon as its backend is taken off the list, rather than when the entry times out.
func TestServiceUDPFlowMoves(t *testing.T) {
	l := newLab(t, "a", "b")
	l.ensure("net1", 303)
	w1 := l.container("a", "net1", "web1", web1.String())
	w2 := l.container("b", "net1", "web2", web2.String())
	client := l.container("a", "net1", "client", "10.200.0.20")
	l.gossip()
	serveUDP(t, w1, 5353, "web1")
	serveUDP(t, w2, 5353, "web2")
	l.setService("net1", Service{Name: "dns", VIP: vip, Ports: []Port{{Proto: "udp", Target: 5353}},
		Backends: []netip.Addr{web1, web2}})

	var conn *net.UDPConn
	must(t, plumbing.Do(client, func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IP(vip.AsSlice()), Port: 5353})
		return err
	}))
	defer conn.Close()
	ask := func() string {
		t.Helper()
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write([]byte("?")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 64)
		n, err := conn.Read(b)
		if err != nil {
			t.Fatalf("UDP to the VIP: %v", err)
		}
		return string(b[:n])
	}
	first := ask()
	if again := ask(); again != first {
		t.Fatalf("one flow answered by %s then %s", first, again)
	}
	keep, keepIP := "web2", web2
	if first == "web2" {
		keep, keepIP = "web1", web1
	}
	l.setService("net1", Service{Name: "dns", VIP: vip, Ports: []Port{{Proto: "udp", Target: 5353}},
		Backends: []netip.Addr{keepIP}})
	if got := ask(); got != keep {
		t.Fatalf("flow still answered by %s after it was removed", got)
	}
}

// serveUDP answers every datagram to port in namespace ns with reply.
func serveUDP(t *testing.T, ns string, port int, reply string) {
	t.Helper()
	var pc net.PacketConn
	must(t, plumbing.Do(ns, func() error {
		var err error
		pc, err = net.ListenPacket("udp4", net.JoinHostPort("", strconv.Itoa(port)))
		return err
	}))
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(b)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(reply), from)
		}
	}()
}
