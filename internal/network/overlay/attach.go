package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// endpointLink names the overlay namespace's end of an endpoint's veth pair after its address, so that
// a replayed Attach finds it.
func endpointLink(ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("ve%02x%02x%02x%02x", b[0], b[1], b[2], b[3])
}

// Attach connects a container to network id on this host: a veth pair from the container's namespace
// (ep.IfName, with ep.IP on the subnet and the overlay's MTU) onto the network's bridge. The container
// gets the route to the subnet, not a default route, and the network's service VIPs. Attaching an
// endpoint that is already attached records it again and changes nothing.
func (d *Driver) Attach(id string, ep Endpoint) error {
	if ep.NetNS == "" || ep.IfName == "" || len(ep.IfName) > 15 {
		return errdefs.InvalidParameter(fmt.Errorf("invalid endpoint: namespace %q, interface %q", ep.NetNS, ep.IfName))
	}
	if ep.MAC == nil {
		ep.MAC = macFor(ep.IP)
	}
	if len(ep.MAC) != 6 {
		return errdefs.InvalidParameter(fmt.Errorf("invalid MAC address: %s", ep.MAC))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.lookup(id)
	if err != nil {
		return err
	}
	sp := st.spec
	if !ep.IP.Is4() || !sp.Subnet.Contains(ep.IP) || ep.IP == sp.Gateway || ep.IP == sp.NodeIP ||
		ep.IP == sp.Subnet.Addr() || ep.IP == broadcast(sp.Subnet) {
		return errdefs.InvalidParameter(fmt.Errorf("address %s is not a free address of network %s (%s)", ep.IP, sp.Name, sp.Subnet))
	}
	if other := st.eps[ep.IP]; other != nil && other.NetNS != ep.NetNS {
		return errdefs.Conflict(fmt.Errorf("address %s is already in use on network %s", ep.IP, sp.Name))
	}
	if err := d.attach(sp, ep); err != nil {
		return errdefs.System(fmt.Errorf("network %s: %w", sp.Name, err))
	}
	e := ep
	st.eps[ep.IP] = &e
	if err := d.writeContainerTable(ep.NetNS); err != nil {
		return errdefs.System(err)
	}
	return d.writeHostTable() // mode=host ports may now have a local task
}

func (d *Driver) attach(sp Spec, ep Endpoint) error {
	nm := d.names(sp.ID)
	ons, err := plumbing.OpenNetNS(nm.ns)
	if err != nil {
		return err
	}
	defer ons.Close()
	h, err := netlink.NewHandleAt(ons)
	if err != nil {
		return err
	}
	defer h.Close()
	cns, err := plumbing.OpenNetNS(ep.NetNS)
	if err != nil {
		return err
	}
	defer cns.Close()
	ch, err := netlink.NewHandleAt(cns)
	if err != nil {
		return err
	}
	defer ch.Close()

	name := endpointLink(ep.IP)
	if _, err := h.LinkByName(name); err == nil {
		if l, err := ch.LinkByName(ep.IfName); err == nil && l.Attrs().HardwareAddr.String() == ep.MAC.String() {
			return nil // attached already
		}
		_ = h.LinkDel(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}})
	}
	br, err := h.LinkByName(bridgeName)
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: name, MasterIndex: br.Attrs().Index, MTU: sp.MTU, TxQLen: -1},
		PeerName:         ep.IfName,
		PeerHardwareAddr: ep.MAC,
		PeerNamespace:    netlink.NsFd(int(cns)),
	}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("creating veth pair: %w", err)
	}
	fail := func(err error) error {
		if l, e := h.LinkByName(name); e == nil {
			_ = h.LinkDel(l)
		}
		return err
	}
	outer, err := h.LinkByName(name)
	if err != nil {
		return fail(err)
	}
	if err := h.LinkSetUp(outer); err != nil {
		return fail(err)
	}
	if lo, err := ch.LinkByName("lo"); err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
		if err := ch.LinkSetUp(lo); err != nil {
			return fail(err)
		}
	}
	inner, err := ch.LinkByName(ep.IfName)
	if err != nil {
		return fail(fmt.Errorf("%s in the container: %w", ep.IfName, err))
	}
	if err := ch.LinkSetMTU(inner, sp.MTU); err != nil {
		return fail(err)
	}
	if err := ch.AddrAdd(inner, &netlink.Addr{IPNet: plumbing.IPNet(ep.IP, sp.Subnet.Bits())}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fail(fmt.Errorf("address %s: %w", ep.IP, err))
	}
	if err := ch.LinkSetUp(inner); err != nil {
		return fail(err)
	}
	return nil
}

// Detach disconnects the endpoint with address ip from network id: its veth pair goes, and its
// container loses the network's VIPs. Detaching an endpoint that is not attached is not an error.
func (d *Driver) Detach(id string, ip netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.lookup(id)
	if err != nil {
		return err
	}
	ep := st.eps[ip]
	delete(st.eps, ip)
	nm := d.names(id)
	var errs []error
	if ons, err := plumbing.OpenNetNS(nm.ns); err == nil {
		if h, err := netlink.NewHandleAt(ons); err == nil {
			if l, err := h.LinkByName(endpointLink(ip)); err == nil {
				if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
					errs = append(errs, err)
				}
			}
			h.Close()
		}
		ons.Close()
	}
	if ep != nil {
		errs = append(errs, d.writeContainerTable(ep.NetNS))
	}
	errs = append(errs, d.writeHostTable())
	return errors.Join(errs...)
}

func broadcast(p netip.Prefix) netip.Addr { return plumbing.Broadcast(p) }
