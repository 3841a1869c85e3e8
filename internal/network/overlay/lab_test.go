package overlay

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A lab is several "hosts" in one kernel: each a network namespace whose eth0 is wired by a veth to a
// bridge in a "switch" namespace, all made by the test and pinned under a directory of its own. Nothing
// is created in the test's own namespace, and only addresses inside the lab are ever dialled; removing
// the pins (and closing the sockets the test opened in them) frees everything, links and nftables tables
// included, whatever state a failed test left.
type lab struct {
	t     testing.TB
	dir   string
	sw    string
	hosts map[string]*labHost
	eps   []labEndpoint // every container attached, for gossip
}

type labHost struct {
	name     string
	ns       string
	underlay netip.Addr
	d        *Driver
}

type labEndpoint struct {
	net  string
	host *labHost
	ip   netip.Addr
}

const underlayPrefix = 24

func newLab(t testing.TB, hostNames ...string) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, VXLAN, nftables)")
	}
	dir := fmt.Sprintf("/run/berth-ovtest-%d-%s", os.Getpid(), strings.ToLower(t.Name()))
	if err := plumbing.PrivateDir(dir); err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, dir: dir, hosts: map[string]*labHost{}}
	t.Cleanup(func() {
		// Pins first (each driver's namespaces, then hosts, containers, the switch), then the mounts.
		for _, h := range l.hosts {
			if h.d != nil {
				h.d.Close()
			}
		}
		_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				_ = plumbing.RemoveNetNS(p)
			}
			return nil
		})
		for _, sub := range []string{"drivers"} {
			ents, _ := os.ReadDir(filepath.Join(dir, sub))
			for _, e := range ents {
				_ = unix.Unmount(filepath.Join(dir, sub, e.Name()), unix.MNT_DETACH)
			}
		}
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		_ = os.RemoveAll(dir)
	})
	l.sw = l.newNS("switch")
	sh := l.handle(l.sw)
	defer sh.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "sw0"}}
	must(t, sh.LinkAdd(br))
	must(t, sh.LinkSetUp(br))
	for i, name := range append(hostNames, "ext") {
		h := &labHost{name: name, ns: l.newNS("host-" + name), underlay: netip.AddrFrom4([4]byte{10, 99, 0, byte(10 + i)})}
		l.wire(h)
		if name != "ext" {
			d, err := New(Config{HostNS: h.ns, Dir: filepath.Join(dir, "drivers", name), Underlay: h.underlay, Table: "berth-ovtest"})
			must(t, err)
			h.d = d
		}
		l.hosts[name] = h
	}
	return l
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (l *lab) newNS(name string) string {
	p := filepath.Join(l.dir, name)
	must(l.t, plumbing.NewNetNS(p))
	return p
}

func (l *lab) handle(ns string) *netlink.Handle {
	fd, err := plumbing.OpenNetNS(ns)
	must(l.t, err)
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	must(l.t, err)
	return h
}

// wire gives host h an eth0 on the switch with its underlay address.
func (l *lab) wire(h *labHost) {
	sh := l.handle(l.sw)
	defer sh.Close()
	hh := l.handle(h.ns)
	defer hh.Close()
	fd, err := plumbing.OpenNetNS(h.ns)
	must(l.t, err)
	defer fd.Close()
	br, err := sh.LinkByName("sw0")
	must(l.t, err)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "p-" + h.name, MasterIndex: br.Attrs().Index},
		PeerName: "eth0", PeerNamespace: netlink.NsFd(int(fd))}
	must(l.t, sh.LinkAdd(v))
	must(l.t, sh.LinkSetUp(v))
	eth0, err := hh.LinkByName("eth0")
	must(l.t, err)
	must(l.t, hh.AddrAdd(eth0, &netlink.Addr{IPNet: plumbing.IPNet(h.underlay, underlayPrefix)}))
	must(l.t, hh.LinkSetUp(eth0))
	lo, err := hh.LinkByName("lo")
	must(l.t, err)
	must(l.t, hh.LinkSetUp(lo))
}

func (l *lab) spec(id string, vni uint32, host string) Spec {
	i := 0
	for _, n := range []string{"a", "b", "c"} {
		if n == host {
			break
		}
		i++
	}
	return Spec{ID: id, Name: id, VNI: vni, Subnet: netip.MustParsePrefix("10.200.0.0/24"),
		Gateway: netip.MustParseAddr("10.200.0.1"), NodeIP: netip.AddrFrom4([4]byte{10, 200, 0, byte(250 + i)})}
}

// ensure makes network id on every host, each node address a peer of the others.
func (l *lab) ensure(id string, vni uint32) {
	for name, h := range l.hosts {
		if h.d != nil {
			must(l.t, h.d.Ensure(l.spec(id, vni, name)))
		}
	}
	for name, h := range l.hosts {
		if h.d == nil {
			continue
		}
		node := l.spec(id, vni, name).NodeIP
		for _, o := range l.hosts {
			if o.d != nil && o != h {
				must(l.t, o.d.AddPeer(id, h.underlay, node, NodeMAC(node)))
			}
		}
	}
}

// container makes a container namespace on host and attaches it to network id with ip.
func (l *lab) container(host, id, name, ip string) string {
	ns := l.newNS("ctr-" + name)
	h := l.hosts[host]
	a := netip.MustParseAddr(ip)
	must(l.t, h.d.Attach(id, Endpoint{NetNS: ns, IfName: "eth0", IP: a}))
	l.eps = append(l.eps, labEndpoint{net: id, host: h, ip: a})
	return ns
}

// gossip adds every endpoint as a peer on the other hosts: what the cluster will do through Raft.
func (l *lab) gossip() {
	for _, ep := range l.eps {
		for _, h := range l.hosts {
			if h.d != nil && h != ep.host {
				must(l.t, h.d.AddPeer(ep.net, ep.host.underlay, ep.ip, nil))
			}
		}
	}
}

// serve answers every TCP connection to port in namespace ns with reply and a newline.
func serve(t testing.TB, ns string, port int, reply string) {
	t.Helper()
	var ln net.Listener
	must(t, plumbing.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	}))
	// Before the lab's cleanup (registered earlier): a socket holds its namespace.
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, reply+"\n")
			c.Close()
		}
	}()
}

// fetch dials addr from namespace ns and returns the first line it is sent.
func fetch(ns, addr string) (string, error) {
	var out string
	err := plumbing.Do(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		b, err := io.ReadAll(c)
		out = strings.TrimSpace(string(b))
		return err
	})
	return out, err
}

// replies fetches addr n times and counts the answers.
func replies(t testing.TB, ns, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		r, err := fetch(ns, addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		got[r]++
	}
	return got
}

// vxlanFrame is what a capture saw of one VXLAN packet on an underlay link.
type vxlanFrame struct {
	outerSrc, outerDst netip.Addr
	vni                uint32
	innerSrc, innerDst netip.Addr
}

// capture records the VXLAN packets crossing interface ifName of namespace ns until stop is called.
func capture(t testing.TB, ns, ifName string) (stop func() []vxlanFrame) {
	t.Helper()
	var fd int
	must(t, plumbing.Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifName)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto); err != nil {
			return err
		}
		_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index})
	}))
	var mu sync.Mutex
	var frames []vxlanFrame
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		buf := make([]byte, 65536)
		draining := false
		for {
			flags := 0
			if !draining {
				select {
				case <-done:
					// What the kernel queued before stop still counts: read it without waiting.
					draining = true
				default:
				}
			}
			if draining {
				flags = unix.MSG_DONTWAIT
			}
			n, _, err := unix.Recvfrom(fd, buf, flags)
			if err != nil {
				if errors.Is(err, unix.EINTR) || (errors.Is(err, unix.EAGAIN) && !draining) {
					continue
				}
				return
			}
			if f, ok := parseVXLAN(buf[:n]); ok {
				mu.Lock()
				frames = append(frames, f)
				mu.Unlock()
			}
		}
	}()
	var once sync.Once
	stop = func() []vxlanFrame {
		once.Do(func() {
			close(done)
			<-finished
			unix.Close(fd)
		})
		mu.Lock()
		defer mu.Unlock()
		return append([]vxlanFrame(nil), frames...)
	}
	t.Cleanup(func() { stop() })
	return stop
}

func parseVXLAN(b []byte) (vxlanFrame, bool) {
	const eth = 14
	if len(b) < eth+20 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return vxlanFrame{}, false
	}
	ip := b[eth:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[9] != unix.IPPROTO_UDP || len(ip) < ihl+8+8+eth+20 {
		return vxlanFrame{}, false
	}
	udp := ip[ihl:]
	if binary.BigEndian.Uint16(udp[2:]) != VXLANPort {
		return vxlanFrame{}, false
	}
	vx := udp[8:]
	if vx[0]&0x08 == 0 {
		return vxlanFrame{}, false
	}
	inner := vx[8:]
	if binary.BigEndian.Uint16(inner[12:]) != 0x0800 {
		return vxlanFrame{}, false
	}
	iip := inner[eth:]
	f := vxlanFrame{
		outerSrc: netip.AddrFrom4([4]byte(ip[12:16])), outerDst: netip.AddrFrom4([4]byte(ip[16:20])),
		vni:      uint32(vx[4])<<16 | uint32(vx[5])<<8 | uint32(vx[6]),
		innerSrc: netip.AddrFrom4([4]byte(iip[12:16])), innerDst: netip.AddrFrom4([4]byte(iip[16:20])),
	}
	return f, true
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// hasTable reports whether namespace ns has an IPv4 nftables table called name.
func hasTable(t testing.TB, ns, name string) bool {
	t.Helper()
	fd, err := plumbing.OpenNetNS(ns)
	must(t, err)
	defer fd.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(fd)))
	must(t, err)
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	must(t, err)
	for _, tb := range tables {
		if tb.Name == name {
			return true
		}
	}
	return false
}
