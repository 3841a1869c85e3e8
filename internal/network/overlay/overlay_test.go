package overlay

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A container on host a reaches one on host b by its address, over VXLAN: the packets on b's underlay
// link are VXLAN with the network's VNI carrying the containers' addresses, and it is the static peer
// entries that make the path (without them nothing is flooded to find it).
func TestCrossHost(t *testing.T) {
	l := newLab(t, "a", "b")
	l.ensure("net1", 4242)
	ca := l.container("a", "net1", "ca", "10.200.0.2")
	cb := l.container("b", "net1", "cb", "10.200.0.3")
	l.gossip()
	serve(t, cb, 80, "hello from b")

	stop := capture(t, l.hosts["b"].ns, "eth0")
	got, err := fetch(ca, "10.200.0.3:80")
	if err != nil || got != "hello from b" {
		t.Fatalf("a -> b: %q, %v", got, err)
	}
	frames := stop()
	var in, out int
	for _, f := range frames {
		if f.vni != 4242 {
			t.Errorf("VXLAN packet with VNI %d", f.vni)
		}
		if f.outerSrc == netip.MustParseAddr("10.99.0.10") && f.outerDst == netip.MustParseAddr("10.99.0.11") &&
			f.innerSrc == netip.MustParseAddr("10.200.0.2") && f.innerDst == netip.MustParseAddr("10.200.0.3") {
			in++
		}
		if f.outerSrc == netip.MustParseAddr("10.99.0.11") && f.innerSrc == netip.MustParseAddr("10.200.0.3") {
			out++
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("no VXLAN-encapsulated packets both ways on b's underlay (%d frames: %+v)", len(frames), frames)
	}
	t.Logf("%d VXLAN packets a->b, %d b->a on the underlay", in, out)

	// The container's side: overlay MTU, its address, no default route.
	h := l.handle(ca)
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	must(t, err)
	if eth0.Attrs().MTU != DefaultMTU {
		t.Errorf("container MTU %d, want %d", eth0.Attrs().MTU, DefaultMTU)
	}
	// The peer entries on a: VXLAN forwarding to b's underlay address, proxy-ARP neighbour.
	oh := l.handle(l.hosts["a"].d.NetNS("net1"))
	defer oh.Close()
	vx, err := oh.LinkByName(l.hosts["a"].d.names("net1").vxlan)
	must(t, err)
	if v := vx.(*netlink.Vxlan); v.Learning || !v.Proxy || v.VxlanId != 4242 || v.Port != VXLANPort {
		t.Errorf("VXLAN device %+v", v)
	}
	fdb, err := oh.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	must(t, err)
	found := false
	for _, n := range fdb {
		if n.HardwareAddr.String() == macFor(netip.MustParseAddr("10.200.0.3")).String() && n.IP.Equal(net.ParseIP("10.99.0.11")) {
			found = true
		}
		if n.HardwareAddr.String() == "00:00:00:00:00:00" {
			t.Errorf("default (flooding) forwarding entry %+v", n)
		}
	}
	if !found {
		t.Errorf("no forwarding entry for 10.200.0.3 via 10.99.0.11: %+v", fdb)
	}

	// Without the peer entries b is unreachable: nothing floods to find it.
	must(t, l.hosts["a"].d.RemovePeer("net1", netip.MustParseAddr("10.99.0.11"), netip.MustParseAddr("10.200.0.3"), nil))
	if got, err := fetch(ca, "10.200.0.3:80"); err == nil {
		t.Fatalf("reached b without peer entries: %q", got)
	}
	must(t, l.hosts["a"].d.AddPeer("net1", netip.MustParseAddr("10.99.0.11"), netip.MustParseAddr("10.200.0.3"), nil))
	if got, err := fetch(ca, "10.200.0.3:80"); err != nil || got != "hello from b" {
		t.Fatalf("a -> b after the peer came back: %q, %v", got, err)
	}

	// Reconciling to a set: a stale peer goes, the listed ones stay.
	a := l.hosts["a"].d
	stale := Peer{Host: netip.MustParseAddr("10.99.0.11"), IP: netip.MustParseAddr("10.200.0.77")}
	must(t, a.AddPeer("net1", stale.Host, stale.IP, nil))
	keep := Peer{Host: netip.MustParseAddr("10.99.0.11"), IP: netip.MustParseAddr("10.200.0.3")}
	node := Peer{Host: netip.MustParseAddr("10.99.0.11"), IP: l.spec("net1", 4242, "b").NodeIP}
	must(t, a.SetPeers("net1", []Peer{keep, node}))
	peers, err := a.Peers("net1")
	must(t, err)
	var ips []string
	for _, p := range peers {
		ips = append(ips, p.IP.String()+"@"+p.Host.String())
	}
	slices.Sort(ips)
	if want := []string{"10.200.0.251@10.99.0.11", "10.200.0.3@10.99.0.11"}; !slices.Equal(ips, want) {
		t.Errorf("peers after SetPeers: %v, want %v", ips, want)
	}
	fdb, err = oh.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	must(t, err)
	for _, n := range fdb {
		if n.HardwareAddr.String() == macFor(stale.IP).String() {
			t.Errorf("forwarding entry of the stale peer left: %+v", n)
		}
	}
	if got, err := fetch(ca, "10.200.0.3:80"); err != nil || got != "hello from b" {
		t.Fatalf("a -> b after SetPeers: %q, %v", got, err)
	}
}

// Two networks with different VNIs on the same hosts and the same subnet never see each other.
func TestNetworksIsolated(t *testing.T) {
	l := newLab(t, "a", "b")
	// Without node addresses: networks with one (which publish ports) need subnets distinct on a host,
	// as the cluster's address pool hands them out.
	for _, h := range []string{"a", "b"} {
		for _, n := range []struct {
			id  string
			vni uint32
		}{{"red", 100}, {"blue", 200}} {
			s := l.spec(n.id, n.vni, h)
			s.NodeIP = netip.Addr{}
			must(t, l.hosts[h].d.Ensure(s))
		}
	}
	ca := l.container("a", "red", "ca", "10.200.0.2")
	cb := l.container("b", "blue", "cb", "10.200.0.3")
	l.gossip()
	serve(t, cb, 80, "blue")
	if got, err := fetch(ca, "10.200.0.3:80"); err == nil {
		t.Fatalf("red reached blue: %q", got)
	}
}

func TestBadInput(t *testing.T) {
	l := newLab(t, "a")
	d := l.hosts["a"].d
	for _, s := range []Spec{
		{ID: "x", VNI: 0, Subnet: netip.MustParsePrefix("10.1.0.0/24")},
		{ID: "x", VNI: 1 << 24, Subnet: netip.MustParsePrefix("10.1.0.0/24")},
		{ID: "x", VNI: 5},
		{ID: "x", VNI: 5, Subnet: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.2.0.1")},
		{ID: "", VNI: 5, Subnet: netip.MustParsePrefix("10.1.0.0/24")},
	} {
		if err := d.Ensure(s); err == nil {
			t.Errorf("Ensure(%+v) accepted", s)
		}
	}
	if err := d.AddPeer("nope", netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.1.0.2"), nil); err == nil {
		t.Error("peer on an unknown network accepted")
	}
	// A subnet the host already routes: refused, and nothing of the network is left.
	hh := l.handle(l.hosts["a"].ns)
	defer hh.Close()
	eth0, err := hh.LinkByName("eth0")
	must(t, err)
	must(t, hh.AddrAdd(eth0, &netlink.Addr{IPNet: plumbing.IPNet(netip.MustParseAddr("10.201.0.1"), 24)}))
	clash := Spec{ID: "clash", VNI: 9, Subnet: netip.MustParsePrefix("10.201.0.0/24"), NodeIP: netip.MustParseAddr("10.201.0.9")}
	if err := d.Ensure(clash); err == nil || !strings.Contains(err.Error(), "already routed") {
		t.Errorf("Ensure on a routed subnet: %v", err)
	}
	if _, err := os.Stat(d.NetNS("clash")); err == nil {
		t.Error("namespace of a failed network left")
	}
	if _, err := hh.LinkByName(d.names("clash").hostEnd); err == nil {
		t.Error("link of a failed network left")
	}

	l.ensure("n", 7)
	if err := d.Ensure(Spec{ID: "n", VNI: 8, Subnet: netip.MustParsePrefix("10.200.0.0/24")}); err == nil {
		t.Error("VNI changed under an existing network")
	}
	ns := l.newNS("ctr-x")
	for _, ep := range []Endpoint{
		{NetNS: ns, IfName: "eth0", IP: netip.MustParseAddr("10.7.0.2")},     // outside the subnet
		{NetNS: ns, IfName: "eth0", IP: netip.MustParseAddr("10.200.0.1")},   // the gateway
		{NetNS: ns, IfName: "eth0", IP: netip.MustParseAddr("10.200.0.255")}, // broadcast
		{NetNS: ns, IfName: "", IP: netip.MustParseAddr("10.200.0.9")},
	} {
		if err := d.Attach("n", ep); err == nil {
			t.Errorf("Attach(%+v) accepted", ep)
		}
	}
	for _, svc := range []Service{
		{Name: "", VIP: netip.MustParseAddr("10.200.0.100")},
		{Name: "s", VIP: netip.MustParseAddr("10.9.0.100")},
		{Name: "s", Ports: []Port{{Proto: "sctp", Target: 80}}},
		{Name: "s", Ports: []Port{{Target: 0}}},
		{Name: "s", Ports: []Port{{Target: 80, Mode: "global"}}},
		{Name: "s", Backends: []netip.Addr{netip.MustParseAddr("10.9.0.3")}},
	} {
		if err := d.SetService("n", svc); err == nil {
			t.Errorf("SetService(%+v) accepted", svc)
		}
	}
	must(t, d.SetService("n", Service{Name: "one", Ports: []Port{{Target: 80, Published: 8080}}}))
	err = d.SetService("n", Service{Name: "two", Ports: []Port{{Target: 81, Published: 8080}}})
	if err == nil || err.Error() != "port '8080' is already in use by service 'one' as an ingress port" {
		t.Errorf("second service on a published port: %v", err)
	}
}

// Delete leaves nothing behind on the host: no namespace, no links, no rules, no VIP rules in the
// containers that were attached.
func TestDeleteCleansUp(t *testing.T) {
	l := newLab(t, "a")
	h := l.hosts["a"]
	l.ensure("n", 9)
	ctr := l.container("a", "n", "c", "10.200.0.2")
	must(t, h.d.SetService("n", Service{Name: "web", VIP: netip.MustParseAddr("10.200.0.100"),
		Ports:    []Port{{Target: 80, Published: 8080}},
		Backends: []netip.Addr{netip.MustParseAddr("10.200.0.2")}}))
	if !hasTable(t, h.ns, "berth-ovtest") || !hasTable(t, ctr, "berth-ovtest") {
		t.Fatal("no rules written")
	}
	ovns := h.d.NetNS("n")
	must(t, h.d.Delete("n"))
	if hasTable(t, h.ns, "berth-ovtest") || hasTable(t, ctr, "berth-ovtest") {
		t.Error("rules left after Delete")
	}
	hh := l.handle(h.ns)
	defer hh.Close()
	links, err := hh.LinkList()
	must(t, err)
	for _, lk := range links {
		if n := lk.Attrs().Name; n != "lo" && n != "eth0" {
			t.Errorf("link %s left on the host", n)
		}
	}
	ch := l.handle(ctr)
	defer ch.Close()
	if _, err := ch.LinkByName("eth0"); err == nil {
		t.Error("the container's interface survived its network")
	}
	if _, err := plumbing.OpenNetNS(ovns); err == nil {
		t.Error("overlay namespace still pinned")
	}
	must(t, h.d.Delete("n")) // again: nothing to do
}

// A restarted berthd replays the cluster's state into a new driver: the kernel objects are found again,
// nothing is made twice, traffic flows as before. Detach then takes the container off the network.
func TestReplayAfterRestart(t *testing.T) {
	l := newLab(t, "a", "b")
	l.ensure("net1", 77)
	ca := l.container("a", "net1", "ca", "10.200.0.2")
	cb := l.container("b", "net1", "cb", "10.200.0.3")
	l.gossip()
	serve(t, cb, 80, "b")
	svc := Service{Name: "web", VIP: netip.MustParseAddr("10.200.0.100"), Backends: []netip.Addr{netip.MustParseAddr("10.200.0.3")}}
	l.setService("net1", svc)
	if got, err := fetch(ca, "10.200.0.100:80"); err != nil || got != "b" {
		t.Fatalf("before the restart: %q, %v", got, err)
	}
	a := l.hosts["a"]
	links := func() []string {
		h := l.handle(a.d.NetNS("net1"))
		defer h.Close()
		ls, err := h.LinkList()
		must(t, err)
		var out []string
		for _, x := range ls {
			out = append(out, x.Attrs().Name)
		}
		return out
	}
	before := links()

	a.d.Close()
	d, err := New(a.d.cfg)
	must(t, err)
	a.d = d
	must(t, d.Ensure(l.spec("net1", 77, "a")))
	must(t, d.Attach("net1", Endpoint{NetNS: ca, IfName: "eth0", IP: netip.MustParseAddr("10.200.0.2")}))
	must(t, d.AddPeer("net1", l.hosts["b"].underlay, netip.MustParseAddr("10.200.0.3"), nil))
	must(t, d.SetService("net1", svc))
	if after := links(); len(after) != len(before) {
		t.Errorf("links before the restart %v, after the replay %v", before, after)
	}
	if got, err := fetch(ca, "10.200.0.100:80"); err != nil || got != "b" {
		t.Fatalf("after the replay: %q, %v", got, err)
	}
	assertDNS(t, ca, "web", svc.VIP)

	must(t, d.Detach("net1", netip.MustParseAddr("10.200.0.2")))
	h := l.handle(ca)
	defer h.Close()
	if _, err := h.LinkByName("eth0"); err == nil {
		t.Error("eth0 still in the container after Detach")
	}
	if hasTable(t, ca, "berth-ovtest") {
		t.Error("VIP rules left in the container after Detach")
	}
}
