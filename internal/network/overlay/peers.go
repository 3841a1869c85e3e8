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

// Peer is one endpoint of a network on another host.
type Peer struct {
	Host netip.Addr       // the host's underlay address
	IP   netip.Addr       // the endpoint's address on the network
	MAC  net.HardwareAddr // nil = derived from IP
}

// SetPeers makes peers exactly the endpoints of network id this host knows on other hosts: those
// missing are added, those no longer listed removed. It is how the cluster reconciles after a restart
// or a missed update; AddPeer and RemovePeer are the incremental forms.
func (d *Driver) SetPeers(id string, peers []Peer) error {
	want := map[netip.Addr]bool{}
	for _, p := range peers {
		want[p.IP] = true
	}
	d.mu.Lock()
	st, err := d.lookup(id)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	stale, err := d.listPeers(st)
	d.mu.Unlock()
	if err != nil {
		return errdefs.System(err)
	}
	for _, p := range stale {
		if !want[p.IP] {
			if err := d.RemovePeer(id, p.Host, p.IP, p.MAC); err != nil {
				return err
			}
		}
	}
	for _, p := range peers {
		if err := d.AddPeer(id, p.Host, p.IP, p.MAC); err != nil {
			return err
		}
	}
	return nil
}

// Peers lists the peers of network id on this host, as the kernel has them.
func (d *Driver) Peers(id string) ([]Peer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	return d.listPeers(st)
}

// listPeers reads the neighbour entries of the VXLAN device and the forwarding entries that give each
// its host. Called with d.mu held.
func (d *Driver) listPeers(st *netState) ([]Peer, error) {
	nm := d.names(st.spec.ID)
	h, err := plumbing.HandleAt(nm.ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	vx, err := h.LinkByName(nm.vxlan)
	if err != nil {
		return nil, err
	}
	fdb, err := h.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		return nil, err
	}
	hostOf := map[string]netip.Addr{}
	for _, n := range fdb {
		if n.Flags&netlink.NTF_SELF != 0 && n.IP != nil {
			if a, ok := netip.AddrFromSlice(n.IP.To4()); ok {
				hostOf[n.HardwareAddr.String()] = a
			}
		}
	}
	neigh, err := h.NeighList(vx.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	var out []Peer
	for _, n := range neigh {
		ip, ok := netip.AddrFromSlice(n.IP.To4())
		if !ok || n.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		out = append(out, Peer{Host: hostOf[n.HardwareAddr.String()], IP: ip, MAC: n.HardwareAddr})
	}
	return out, nil
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
	h, err := plumbing.HandleAt(nm.ns)
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
