package overlay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SetService makes network id carry svc on this host, replacing an earlier version of the service of
// the same name: its VIP in every local container on the network, its published ports on this host,
// its DNS names. New backends take new connections at once; connections tracked to backends no longer
// listed are forgotten, so their next packet goes to a live backend (a TCP peer then resets).
func (d *Driver) SetService(id string, svc Service) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.lookup(id)
	if err != nil {
		return err
	}
	if err := d.validateService(st, &svc); err != nil {
		return err
	}
	old := st.services[svc.Name]
	st.services[svc.Name] = &svc
	if err := d.applyService(st, old, &svc); err != nil {
		if old != nil {
			st.services[svc.Name] = old
		} else {
			delete(st.services, svc.Name)
		}
		_ = d.applyService(st, &svc, old)
		return errdefs.System(err)
	}
	return nil
}

// RemoveService takes service name off network id on this host; removing one that is not there is not
// an error.
func (d *Driver) RemoveService(id, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, err := d.lookup(id)
	if err != nil {
		return err
	}
	old := st.services[strings.ToLower(name)]
	if old == nil {
		return nil
	}
	delete(st.services, old.Name)
	return d.applyService(st, old, nil)
}

// applyService rewrites the tables that carry old or svc (either may be nil) and forgets connections
// to backends that svc no longer has.
func (d *Driver) applyService(st *netState, old, svc *Service) error {
	var errs []error
	for _, ns := range containerNamespaces(st) {
		errs = append(errs, d.writeContainerTable(ns))
	}
	errs = append(errs, d.writeHostTable())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if old == nil {
		return nil
	}
	var gone []netip.Addr
	for _, b := range old.Backends {
		if svc == nil || !slices.Contains(svc.Backends, b) {
			gone = append(gone, b)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if old.VIP.IsValid() {
		for _, ns := range containerNamespaces(st) {
			forgetConnections(ns, old.VIP, gone)
		}
	}
	if len(publishedPorts(old)) > 0 {
		forgetConnections(d.cfg.HostNS, netip.Addr{}, gone)
		forgetConnections(d.names(st.spec.ID).ns, netip.Addr{}, gone)
	}
	return nil
}

// forgetConnections deletes the conntrack entries in namespace ns (""= the host's) whose replies come
// from one of backends and, when vip is valid, that were addressed to vip. Best effort: a namespace
// that is gone has nothing to forget.
func forgetConnections(ns string, vip netip.Addr, backends []netip.Addr) {
	var h *netlink.Handle
	var err error
	if ns == "" {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	} else {
		fd, e := plumbing.OpenNetNS(ns)
		if e != nil {
			return
		}
		h, err = netlink.NewHandleAt(fd, unix.NETLINK_NETFILTER)
		fd.Close()
	}
	if err != nil {
		return
	}
	defer h.Close()
	var filters []netlink.CustomConntrackFilter
	for _, b := range backends {
		f := &netlink.ConntrackFilter{}
		_ = f.AddIP(netlink.ConntrackReplySrcIP, net.IP(b.AsSlice()))
		if vip.IsValid() {
			_ = f.AddIP(netlink.ConntrackOrigDstIP, net.IP(vip.AsSlice()))
		}
		filters = append(filters, f)
	}
	_, _ = h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
}

func (d *Driver) validateService(st *netState, svc *Service) error {
	bad := func(format string, a ...any) error { return errdefs.InvalidParameter(fmt.Errorf(format, a...)) }
	svc.Name = strings.ToLower(svc.Name)
	if svc.Name == "" || strings.ContainsAny(svc.Name, " \t/") || strings.HasPrefix(svc.Name, "tasks.") {
		return bad("invalid service name %q", svc.Name)
	}
	sp := st.spec
	if svc.VIP.IsValid() && (!svc.VIP.Is4() || !sp.Subnet.Contains(svc.VIP) || svc.VIP == sp.Gateway || svc.VIP == sp.NodeIP) {
		return bad("virtual IP %s is not a free address of network %s (%s)", svc.VIP, sp.Name, sp.Subnet)
	}
	ports := make([]Port, 0, len(svc.Ports))
	for _, p := range svc.Ports {
		p.Proto = strings.ToLower(p.Proto)
		if p.Proto == "" {
			p.Proto = "tcp"
		}
		if p.Proto != "tcp" && p.Proto != "udp" {
			return bad("invalid protocol %q: want tcp or udp", p.Proto)
		}
		if p.Target == 0 {
			return bad("invalid target port 0")
		}
		if p.Mode == "" {
			p.Mode = ModeIngress
		}
		if p.Mode != ModeIngress && p.Mode != ModeHost {
			return bad("invalid publish mode %q: want ingress or host", p.Mode)
		}
		if p.Published != 0 && !sp.NodeIP.IsValid() {
			return bad("network %s has no node address on this host: it cannot publish port %d", sp.Name, p.Published)
		}
		ports = append(ports, p)
	}
	svc.Ports = ports
	// Published ports are the host's, whatever network carries them.
	for nid, other := range d.nets {
		for _, o := range other.services {
			if nid == sp.ID && o.Name == svc.Name {
				continue
			}
			for _, p := range publishedPorts(svc) {
				for _, q := range publishedPorts(o) {
					if p.Proto == q.Proto && p.Published == q.Published {
						return errdefs.Conflict(fmt.Errorf("port '%d' is already in use by service '%s' as an ingress port", p.Published, o.Name))
					}
				}
			}
		}
	}
	seen := map[netip.Addr]bool{}
	var backends []netip.Addr
	for _, b := range svc.Backends {
		if !b.Is4() || !sp.Subnet.Contains(b) {
			return bad("backend %s is not an address of network %s (%s)", b, sp.Name, sp.Subnet)
		}
		if !seen[b] {
			seen[b] = true
			backends = append(backends, b)
		}
	}
	slices.SortFunc(backends, func(a, b netip.Addr) int { return a.Compare(b) })
	svc.Backends = backends
	return nil
}

func publishedPorts(svc *Service) []Port {
	if svc == nil {
		return nil
	}
	var out []Port
	for _, p := range svc.Ports {
		if p.Published != 0 {
			out = append(out, p)
		}
	}
	return out
}
