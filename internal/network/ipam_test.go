package network

import (
	"net/netip"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestPoolRoundRobinAndStatic(t *testing.T) {
	n := &Network{Subnet: netip.MustParsePrefix("10.1.0.0/29"), Gateway: netip.MustParseAddr("10.1.0.1")}
	p := newPool(n)
	var got []string
	for i := 0; i < 5; i++ {
		a, err := p.allocate(netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	want := []string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocations %v, want %v", got, want)
		}
	}
	if _, err := p.allocate(netip.Addr{}); errdefs.KindOf(err) != errdefs.KindUnavailable {
		t.Fatalf("a full /29 should be unavailable, got %v", err)
	}
	// A released address is not handed out again while others are free: after .3 is freed, .3 comes
	// back only once the cursor wraps.
	p.release(netip.MustParseAddr("10.1.0.3"))
	p.release(netip.MustParseAddr("10.1.0.5"))
	a, _ := p.allocate(netip.Addr{})
	if a.String() != "10.1.0.3" {
		t.Fatalf("after wrap-around got %s", a)
	}
	if _, err := p.allocate(netip.MustParseAddr("10.1.0.4")); !errdefs.IsConflict(err) {
		t.Fatalf("static address in use: %v", err)
	}
	if _, err := p.allocate(netip.MustParseAddr("10.2.0.4")); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("static address outside the subnet: %v", err)
	}
	if _, err := p.allocate(netip.MustParseAddr("10.1.0.1")); err == nil {
		t.Fatal("the gateway must not be given to a container")
	}
	if a, err := p.allocate(netip.MustParseAddr("10.1.0.5")); err != nil || a.String() != "10.1.0.5" {
		t.Fatalf("free static address: %v %v", a, err)
	}
}

func TestPoolIPRange(t *testing.T) {
	n := &Network{Subnet: netip.MustParsePrefix("10.1.0.0/24"), Gateway: netip.MustParseAddr("10.1.0.254"),
		IPRange: netip.MustParsePrefix("10.1.0.128/30")}
	p := newPool(n)
	a, _ := p.allocate(netip.Addr{})
	b, _ := p.allocate(netip.Addr{})
	c, _ := p.allocate(netip.Addr{})
	if a.String() != "10.1.0.128" || b.String() != "10.1.0.129" || c.String() != "10.1.0.130" {
		t.Fatalf("range allocations %s %s %s", a, b, c)
	}
	// Static addresses may lie outside the range, inside the subnet (Docker's rule).
	if _, err := p.allocate(netip.MustParseAddr("10.1.0.10")); err != nil {
		t.Fatal(err)
	}
}

func TestBroadcastAndOverlap(t *testing.T) {
	if b := broadcast(netip.MustParsePrefix("172.18.0.0/16")); b.String() != "172.18.255.255" {
		t.Fatal(b)
	}
	taken := []netip.Prefix{netip.MustParsePrefix("172.17.0.0/16"), netip.MustParsePrefix("172.18.5.0/24")}
	var first netip.Prefix
	for _, c := range candidatePools() {
		if !overlapsAny(c, taken) {
			first = c
			break
		}
	}
	if first.String() != "172.19.0.0/16" {
		t.Fatalf("first free pool %s", first)
	}
}
