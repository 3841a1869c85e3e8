package network

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ensureBridge creates n's bridge if missing and gives it the gateway address.
func ensureBridge(n *Network) error {
	l, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("looking up bridge %s: %w", n.Bridge, err)
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge, MTU: 1500, TxQLen: -1}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("creating bridge %s: %w", n.Bridge, err)
		}
		if l, err = netlink.LinkByName(n.Bridge); err != nil {
			return err
		}
	}
	if _, ok := l.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s exists and is not a bridge", n.Bridge)
	}
	want := &netlink.Addr{IPNet: plumbing.IPNet(n.Gateway, n.Subnet.Bits())}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	have := false
	for _, a := range addrs {
		if a.IPNet.String() == want.IPNet.String() {
			have = true
			continue
		}
		// A stale address from an earlier configuration (--bip changed) would route the old subnet here.
		_ = netlink.AddrDel(l, &a)
	}
	if !have {
		if err := netlink.AddrAdd(l, want); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("address %s on %s: %w", want.IPNet, n.Bridge, err)
		}
	}
	// Packets DNATed from 127.0.0.1 to a container leave through the bridge with a loopback source (and
	// replies come back to it) only if the bridge allows loopback addresses.
	_ = os.WriteFile("/proc/sys/net/ipv4/conf/"+n.Bridge+"/route_localnet", []byte("1"), 0o644)
	return netlink.LinkSetUp(l)
}

func deleteBridge(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	return netlink.LinkDel(l)
}

func vethName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "veth" + hex.EncodeToString(b)[:7]
}

// attach creates ep's veth pair with the container's end directly in the namespace at nsPath, then
// configures that end: address, up, routes.
func attach(n *Network, ep *Endpoint, nsPath string) error {
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	ns, err := plumbing.OpenNetNS(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return err
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{
			Name: ep.Veth, MasterIndex: br.Attrs().Index, MTU: 1500, TxQLen: -1,
		},
		PeerName:         ep.IfName,
		PeerHardwareAddr: mac,
		PeerNamespace:    netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("creating veth pair: %w", err)
	}
	// The host end is a bridge port and needs no addresses of its own: without IPv6 it skips
	// autoconfiguration, set before it comes up.
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+ep.Veth+"/disable_ipv6", []byte("1"), 0o644)
	// Hairpin: a container reaching its own published port through the host is DNATed back out of
	// the port it came in by, which a bridge refuses unless told otherwise.
	_ = os.WriteFile("/sys/class/net/"+ep.Veth+"/brport/hairpin_mode", []byte("1"), 0o644)
	if err := netlink.LinkSetUp(veth); err != nil {
		_ = deleteLink(ep.Veth)
		return fmt.Errorf("bring up %s: %w", ep.Veth, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		_ = deleteLink(ep.Veth)
		return err
	}
	defer h.Close()
	if err := configureInside(h, n, ep); err != nil {
		_ = deleteLink(ep.Veth)
		return err
	}
	return nil
}

func configureInside(h *netlink.Handle, n *Network, ep *Endpoint) error {
	lo, err := h.LinkByName("lo")
	if err == nil && lo.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("bring up lo: %w", err)
		}
	}
	l, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("%s in the container: %w", ep.IfName, err)
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: plumbing.IPNet(ep.IP, ep.Prefix)}); err != nil {
		return fmt.Errorf("address %s: %w", ep.IP, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring up %s: %w", ep.IfName, err)
	}
	if ep.DefaultRoute {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.IP(n.Gateway.AsSlice()),
			Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("default route via %s: %w", n.Gateway, err)
		}
	}
	return nil
}

// detachInside removes a link from a container's namespace (disconnect of a running container); the
// host end goes with it.
func detachInside(nsPath, ifName string) error {
	h, err := plumbing.HandleAt(nsPath)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(ifName)
	if err != nil {
		return nil
	}
	return h.LinkDel(l)
}

func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil // gone already (its namespace died)
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return err // ENODEV: the kernel took it with the namespace meanwhile
	}
	return nil
}
