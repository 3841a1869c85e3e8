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

// AddPeer makes endpoint ip (with MAC mac, nil = derived from ip) on host hostIP reachable from this
// host's side of network id: a VXLAN forwarding entry (mac -> hostIP), a bridge entry (mac -> the VXLAN
// port, so frames for it are never flooded to local ports) and a neighbour entry (ip -> mac) the VXLAN
// device's proxy ARP answers from. A peer that moved to another host is updated in place. Peers whose
// host is this host's own underlay address are ignored: local endpoints are attached, not peers.
func (d *Driver) AddPeer(id string, hostIP, ip netip.Addr, mac net.HardwareAddr) error {
	return d.peer(id, hostIP, ip, mac, true)
}

// RemovePeer undoes AddPeer; removing a peer that is not there is not an error.
func (d *Driver) RemovePeer(id string, hostIP, ip netip.Addr, mac net.HardwareAddr) error {
	return d.peer(id, hostIP, ip, mac, false)
}

func (d *Driver) peer(id string, hostIP, ip netip.Addr, mac net.HardwareAddr, add bool) error {
	if !hostIP.Is4() || !ip.Is4() {
		return errdefs.InvalidParameter(fmt.Errorf("invalid peer %s on host %s: want IPv4 addresses", ip, hostIP))
	}
	if mac == nil {
		mac = macFor(ip)
	}
	if len(mac) != 6 {
		return errdefs.InvalidParameter(fmt.Errorf("invalid MAC address: %s", mac))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.lookup(id)
	if err != nil {
		return err
	}
	if hostIP == d.cfg.Underlay {
		return nil
	}
	if !st.spec.Subnet.Contains(ip) || ip == st.spec.Gateway {
		return errdefs.InvalidParameter(fmt.Errorf("peer %s is not an address of network %s (%s)", ip, st.spec.Name, st.spec.Subnet))
	}
	nm := d.names(id)
	ns, err := plumbing.OpenNetNS(nm.ns)
	if err != nil {
		return errdefs.System(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return errdefs.System(err)
	}
	defer h.Close()
	vx, err := h.LinkByName(nm.vxlan)
	if err != nil {
		return errdefs.System(fmt.Errorf("network %s: VXLAN device: %w", st.spec.Name, err))
	}
	idx := vx.Attrs().Index
	entries := []*netlink.Neigh{
		// bridge fdb <mac> dev vx self dst <host> permanent
		{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT,
			IP: net.IP(hostIP.AsSlice()), HardwareAddr: mac},
		// bridge fdb <mac> dev vx master static (NUD_PERMANENT would make it the bridge's own address)
		{LinkIndex: idx, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER, State: netlink.NUD_NOARP,
			HardwareAddr: mac},
		// ip neigh <ip> lladdr <mac> dev vx permanent
		{LinkIndex: idx, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
			IP: net.IP(ip.AsSlice()), HardwareAddr: mac},
	}
	for _, n := range entries {
		if add {
			err = h.NeighSet(n)
		} else if err = h.NeighDel(n); errors.Is(err, unix.ENOENT) {
			err = nil
		}
		if err != nil {
			verb := "adding"
			if !add {
				verb = "removing"
			}
			return errdefs.System(fmt.Errorf("network %s: %s peer %s on %s: %w", st.spec.Name, verb, ip, hostIP, err))
		}
	}
	return nil
}
