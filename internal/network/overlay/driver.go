package overlay

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/miekg/dns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Names inside an overlay namespace (its own, so fixed) and the two link-local next hops of the link
// between the host's namespace and the overlay's. The link has no addresses: each side has a static
// neighbour entry for the other's next hop, so nothing on the host gains an address.
const (
	bridgeName = "br0"
	gwName     = "gw0"
)

var (
	hostHop    = netip.MustParseAddr("169.254.86.1") // the host's side, as seen from the overlay namespace
	overlayHop = netip.MustParseAddr("169.254.86.2") // the overlay's side, as seen from the host
)

// Driver is the overlay data plane of one host. Its methods are safe for concurrent use; one mutex
// serializes them, as they rewrite shared kernel state.
type Driver struct {
	cfg  Config
	log  *slog.Logger
	mu   sync.Mutex
	nets map[string]*netState // by Spec.ID
}

type netState struct {
	spec     Spec
	eps      map[netip.Addr]*Endpoint // attached on this host, by address
	services map[string]*Service      // by name
	dns      *network.DNSServer
}

// New makes a driver for the host described by cfg. It touches nothing in the kernel but making
// cfg.Dir a private mount.
func New(cfg Config) (*Driver, error) {
	if cfg.Dir == "" {
		return nil, errors.New("overlay: no directory for namespaces")
	}
	if cfg.Table == "" {
		cfg.Table = "berth-overlay"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := plumbing.PrivateDir(cfg.Dir); err != nil {
		return nil, err
	}
	return &Driver{cfg: cfg, log: cfg.Logger, nets: map[string]*netState{}}, nil
}

// Close stops the DNS servers. Networks, links and rules stay: containers keep their traffic while
// berthd restarts, and the cluster's replay finds them again.
func (d *Driver) Close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, st := range d.nets {
		if st.dns != nil {
			st.dns.Close()
			st.dns = nil
		}
	}
}

// names of one network's kernel objects, derived from its ID so that they are found again after a
// restart, and valid interface names whatever the ID looks like.
type names struct {
	ns      string // the pinned namespace
	vxlan   string // the VXLAN device (made in the host namespace, then moved)
	hostEnd string // the host's end of the gw link
}

func (d *Driver) names(id string) names {
	h := sha256.Sum256([]byte(id))
	short := hex.EncodeToString(h[:])[:10]
	return names{ns: filepath.Join(d.cfg.Dir, "ov-"+short), vxlan: "vx" + short, hostEnd: "ov" + short}
}

// NetNS returns the path of network id's namespace on this host (for inspection and tests).
func (d *Driver) NetNS(id string) string { return d.names(id).ns }

func validateSpec(s *Spec) error {
	bad := func(format string, a ...any) error {
		return errdefs.InvalidParameter(fmt.Errorf("overlay network %q: "+format, append([]any{s.Name}, a...)...))
	}
	if s.ID == "" {
		return bad("no ID")
	}
	if s.VNI == 0 || s.VNI > 1<<24-1 {
		return bad("VXLAN ID %d out of range (1-16777215)", s.VNI)
	}
	if !s.Subnet.IsValid() || !s.Subnet.Addr().Is4() {
		return bad("invalid subnet %s: want an IPv4 prefix", s.Subnet)
	}
	s.Subnet = s.Subnet.Masked()
	if s.Gateway.IsValid() && !s.Subnet.Contains(s.Gateway) {
		return bad("gateway %s is not in subnet %s", s.Gateway, s.Subnet)
	}
	if s.NodeIP.IsValid() && (!s.Subnet.Contains(s.NodeIP) || s.NodeIP == s.Gateway) {
		return bad("node address %s is not a free address of subnet %s", s.NodeIP, s.Subnet)
	}
	if s.MTU == 0 {
		s.MTU = DefaultMTU
	}
	if s.MTU < 576 || s.MTU > 9000 {
		return bad("MTU %d out of range (576-9000)", s.MTU)
	}
	return nil
}

// Ensure makes network spec exist on this host, as far as it does not yet: namespace, bridge, VXLAN
// device, the link for published ports (when spec has a NodeIP) and the DNS server (when it has a
// gateway). Calling it again with the same spec changes nothing; VNI and subnet of an existing network
// cannot change.
func (d *Driver) Ensure(spec Spec) error {
	if err := validateSpec(&spec); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.nets[spec.ID]
	if st != nil && (st.spec.VNI != spec.VNI || st.spec.Subnet != spec.Subnet) {
		return errdefs.Conflict(fmt.Errorf("overlay network %q exists with VXLAN ID %d and subnet %s", spec.Name, st.spec.VNI, st.spec.Subnet))
	}
	if err := d.ensureKernel(spec); err != nil {
		if st == nil {
			_ = d.deleteKernel(d.names(spec.ID)) // a network that failed to come up leaves nothing
		}
		return errdefs.System(fmt.Errorf("overlay network %q: %w", spec.Name, err))
	}
	if st == nil {
		st = &netState{eps: map[netip.Addr]*Endpoint{}, services: map[string]*Service{}}
		d.nets[spec.ID] = st
	}
	if st.dns != nil && st.spec.Gateway != spec.Gateway {
		st.dns.Close()
		st.dns = nil
	}
	st.spec = spec
	if st.dns == nil && spec.Gateway.IsValid() {
		id := spec.ID
		srv, err := network.StartDNS(d.names(id).ns, spec.Gateway, network.ResolverFunc(
			func(q dns.Question, from netip.Addr) (bool, []dns.RR, []string) { return d.resolve(id, q, from) }))
		if err != nil {
			d.log.Warn("overlay: embedded DNS unavailable", "network", spec.Name, "err", err)
		} else {
			st.dns = srv
		}
	}
	return d.writeHostTable()
}

func (d *Driver) ensureKernel(spec Spec) error {
	nm := d.names(spec.ID)
	if _, err := os.Stat(nm.ns); err != nil {
		if err := plumbing.NewNetNS(nm.ns); err != nil {
			return err
		}
		// Forwarding is for published ports (host -> gw0 -> br0); IPv6 is not used on overlays.
		if err := plumbing.Do(nm.ns, func() error {
			for key, v := range map[string]string{
				"net/ipv4/ip_forward":                "1",
				"net/ipv6/conf/default/disable_ipv6": "1",
				"net/ipv6/conf/all/disable_ipv6":     "1",
			} {
				if err := os.WriteFile("/proc/sys/"+key, []byte(v), 0o644); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("sysctl %s: %w", key, err)
				}
			}
			return nil
		}); err != nil {
			_ = plumbing.RemoveNetNS(nm.ns)
			return err
		}
	}
	ns, err := plumbing.OpenNetNS(nm.ns)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	host, err := d.hostHandle()
	if err != nil {
		return err
	}
	defer host.Close()

	br, err := d.ensureBridge(h, spec)
	if err != nil {
		return err
	}
	if err := d.ensureVXLAN(h, host, ns, nm, spec, br); err != nil {
		return err
	}
	if spec.NodeIP.IsValid() {
		if err := d.ensureGateway(h, host, ns, nm, spec); err != nil {
			return err
		}
	}
	return writeOverlayTable(nm.ns, d.cfg.Table, spec)
}

func (d *Driver) hostHandle() (*netlink.Handle, error) {
	if d.cfg.HostNS == "" {
		return netlink.NewHandle()
	}
	ns, err := plumbing.OpenNetNS(d.cfg.HostNS)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns)
}

// ensureBridge makes br0 with exactly the gateway and node addresses, up. Its MAC is NodeMAC(NodeIP),
// the one other hosts' peer entries name.
func (d *Driver) ensureBridge(h *netlink.Handle, spec Spec) (netlink.Link, error) {
	l, err := h.LinkByName(bridgeName)
	if err != nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, MTU: spec.MTU, TxQLen: -1}}
		if spec.NodeIP.IsValid() {
			br.HardwareAddr = macFor(spec.NodeIP)
		}
		if err := h.LinkAdd(br); err != nil {
			return nil, fmt.Errorf("creating bridge: %w", err)
		}
		if l, err = h.LinkByName(bridgeName); err != nil {
			return nil, err
		}
	}
	if spec.NodeIP.IsValid() && l.Attrs().HardwareAddr.String() != macFor(spec.NodeIP).String() {
		if err := h.LinkSetHardwareAddr(l, macFor(spec.NodeIP)); err != nil {
			return nil, fmt.Errorf("bridge MAC: %w", err)
		}
	}
	// The gateway first: it is the primary address, the one replies of the DNS server come from.
	var want []*net.IPNet
	for _, a := range []netip.Addr{spec.Gateway, spec.NodeIP} {
		if a.IsValid() {
			want = append(want, plumbing.IPNet(a, spec.Subnet.Bits()))
		}
	}
	have, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	for _, a := range have {
		keep := false
		for _, w := range want {
			keep = keep || a.IPNet.String() == w.String()
		}
		if !keep {
			_ = h.AddrDel(l, &a)
		}
	}
	for _, w := range want {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: w}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("address %s on the bridge: %w", w, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return nil, err
	}
	return l, nil
}

// ensureVXLAN makes the VXLAN device in the host namespace (where its socket and route lookups then
// stay) and moves it into the overlay namespace, onto the bridge.
func (d *Driver) ensureVXLAN(h, host *netlink.Handle, ns netns.NsHandle, nm names, spec Spec, br netlink.Link) error {
	l, err := h.LinkByName(nm.vxlan)
	if err == nil {
		if vx, ok := l.(*netlink.Vxlan); !ok || vx.VxlanId != int(spec.VNI) {
			return fmt.Errorf("%s exists and is not VXLAN %d", nm.vxlan, spec.VNI)
		}
	} else {
		if stale, err := host.LinkByName(nm.vxlan); err == nil {
			_ = host.LinkDel(stale) // made by a run that died before moving it
		}
		vx := &netlink.Vxlan{
			LinkAttrs: netlink.LinkAttrs{Name: nm.vxlan, MTU: spec.MTU, TxQLen: -1},
			VxlanId:   int(spec.VNI),
			Port:      VXLANPort,
			Learning:  false, // peers are static: nothing learnt from the wire
			Proxy:     true,  // answer ARP for peers from the neighbour table, never send it over
		}
		if d.cfg.Underlay.IsValid() {
			vx.SrcAddr = net.IP(d.cfg.Underlay.AsSlice())
		}
		if err := host.LinkAdd(vx); err != nil {
			return fmt.Errorf("creating VXLAN device: %w", err)
		}
		made, err := host.LinkByName(nm.vxlan)
		if err != nil {
			return err
		}
		if err := host.LinkSetNsFd(made, int(ns)); err != nil {
			_ = host.LinkDel(made)
			return fmt.Errorf("moving VXLAN device: %w", err)
		}
		if l, err = h.LinkByName(nm.vxlan); err != nil {
			return err
		}
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMaster(l, br); err != nil {
			return fmt.Errorf("VXLAN device onto the bridge: %w", err)
		}
	}
	return h.LinkSetUp(l)
}

// ensureGateway makes the veth pair that carries published-port traffic between the host namespace
// and the overlay namespace, with the route to the subnet on the host's side and the way back.
func (d *Driver) ensureGateway(h, host *netlink.Handle, ns netns.NsHandle, nm names, spec Spec) error {
	inner, err := h.LinkByName(gwName)
	if err != nil {
		if stale, err := host.LinkByName(nm.hostEnd); err == nil {
			_ = host.LinkDel(stale)
		}
		v := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: nm.hostEnd, MTU: spec.MTU, TxQLen: -1},
			PeerName:      gwName,
			PeerNamespace: netlink.NsFd(int(ns)),
		}
		if err := host.LinkAdd(v); err != nil {
			return fmt.Errorf("creating %s: %w", nm.hostEnd, err)
		}
		if inner, err = h.LinkByName(gwName); err != nil {
			return err
		}
	}
	outer, err := host.LinkByName(nm.hostEnd)
	if err != nil {
		return fmt.Errorf("%s: %w", nm.hostEnd, err)
	}
	_ = plumbing.Sysctl(d.cfg.HostNS, "net/ipv6/conf/"+nm.hostEnd+"/disable_ipv6", "1")
	// A published port asked for on 127.0.0.1 leaves through this link (source-NATed to hostHop); the
	// replies, un-NATed back to 127.0.0.1, arrive on it too.
	_ = plumbing.Sysctl(d.cfg.HostNS, "net/ipv4/conf/"+nm.hostEnd+"/route_localnet", "1")
	// Forwarding on the host is what turns a published port into a path to the overlay.
	if err := plumbing.Sysctl(d.cfg.HostNS, "net/ipv4/ip_forward", "1"); err != nil {
		return fmt.Errorf("enabling IPv4 forwarding: %w", err)
	}
	for _, x := range []struct {
		h   *netlink.Handle
		l   netlink.Link
		hop netip.Addr
		mac net.HardwareAddr
	}{{host, outer, overlayHop, inner.Attrs().HardwareAddr}, {h, inner, hostHop, outer.Attrs().HardwareAddr}} {
		if err := x.h.LinkSetUp(x.l); err != nil {
			return err
		}
		if err := x.h.NeighSet(&netlink.Neigh{LinkIndex: x.l.Attrs().Index, Family: netlink.FAMILY_V4,
			State: netlink.NUD_PERMANENT, IP: net.IP(x.hop.AsSlice()), HardwareAddr: x.mac}); err != nil {
			return fmt.Errorf("neighbour %s: %w", x.hop, err)
		}
	}
	onlink := func(l netlink.Link, dst *net.IPNet, via netip.Addr) *netlink.Route {
		return &netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: net.IP(via.AsSlice()), Flags: int(netlink.FLAG_ONLINK)}
	}
	sub := plumbing.IPNet(spec.Subnet.Addr(), spec.Subnet.Bits())
	if err := host.RouteAdd(onlink(outer, sub, overlayHop)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("route to %s: %w", spec.Subnet, err)
	}
	if routes, err := host.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: sub}, netlink.RT_FILTER_DST); err == nil {
		for _, r := range routes {
			if r.LinkIndex != outer.Attrs().Index {
				return fmt.Errorf("subnet %s is already routed on this host", spec.Subnet)
			}
		}
	}
	def := &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}
	if err := h.RouteReplace(onlink(inner, def, hostHop)); err != nil {
		return fmt.Errorf("default route in the overlay namespace: %w", err)
	}
	return nil
}

// Delete removes network id from this host: its services' rules, its endpoints' links, its namespace.
// Deleting a network that is not there is not an error.
func (d *Driver) Delete(id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	nm := d.names(id)
	st := d.nets[id]
	delete(d.nets, id)
	var errs []error
	if st != nil {
		if st.dns != nil {
			st.dns.Close()
		}
		for _, ns := range containerNamespaces(st) {
			errs = append(errs, d.writeContainerTable(ns))
		}
	}
	errs = append(errs, d.writeHostTable(), d.deleteKernel(nm))
	return errors.Join(errs...)
}

// deleteKernel removes a network's links and namespace.
func (d *Driver) deleteKernel(nm names) error {
	var errs []error
	if host, err := d.hostHandle(); err == nil {
		if l, err := host.LinkByName(nm.hostEnd); err == nil {
			errs = append(errs, host.LinkDel(l))
		}
		if l, err := host.LinkByName(nm.vxlan); err == nil {
			errs = append(errs, host.LinkDel(l))
		}
		host.Close()
	}
	if _, err := os.Stat(nm.ns); err == nil {
		// Links first: a namespace outlives its pin while anything holds it, and the containers' ends
		// of the endpoint pairs go with ours.
		if ns, err := plumbing.OpenNetNS(nm.ns); err == nil {
			if h, err := netlink.NewHandleAt(ns); err == nil {
				if links, err := h.LinkList(); err == nil {
					for _, l := range links {
						if l.Attrs().Name != "lo" {
							_ = h.LinkDel(l)
						}
					}
				}
				h.Close()
			}
			ns.Close()
		}
		errs = append(errs, plumbing.RemoveNetNS(nm.ns))
	}
	return errors.Join(errs...)
}

func containerNamespaces(st *netState) []string {
	seen := map[string]bool{}
	var out []string
	for _, ep := range st.eps {
		if !seen[ep.NetNS] {
			seen[ep.NetNS] = true
			out = append(out, ep.NetNS)
		}
	}
	return out
}

func (d *Driver) lookup(id string) (*netState, error) {
	st := d.nets[id]
	if st == nil {
		return nil, errdefs.NotFound(fmt.Errorf("network %s not found", id))
	}
	return st, nil
}

func macFor(a netip.Addr) net.HardwareAddr { return plumbing.MACFor(a) }

// Prune removes the networks this host has in the kernel (pinned under Config.Dir, from an earlier run
// of berthd) other than keep and those set up since this Driver was made, and rewrites the host's
// rules from what remains: a network removed while berthd was down must not keep its VXLAN ID busy
// or its published ports captured.
func (d *Driver) Prune(keep []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	kept := map[string]bool{}
	for _, id := range append(keep, sortedKeys(d.nets)...) {
		kept[filepath.Base(d.names(id).ns)] = true
	}
	ents, err := os.ReadDir(d.cfg.Dir)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var errs []error
	for _, e := range ents {
		name := e.Name()
		short, ok := strings.CutPrefix(name, "ov-")
		if !ok || kept[name] {
			continue
		}
		errs = append(errs, d.deleteKernel(names{ns: filepath.Join(d.cfg.Dir, name), vxlan: "vx" + short, hostEnd: "ov" + short}))
	}
	errs = append(errs, d.writeHostTable())
	return errors.Join(errs...)
}
