package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/plumbing"
)

// Overlay attaches containers to networks that span hosts (internal/network/overlay's Driver, through
// an adapter: that package uses this one's DNS server, so it cannot be imported here).
type Overlay interface {
	Attach(networkID, netns, ifName string, ip netip.Addr, mac net.HardwareAddr) error
	Detach(networkID string, ip netip.Addr) error
}

// SetOverlays makes nets the overlay networks this engine knows: the cluster's, as far as this node
// takes part in them. Networks no longer listed are forgotten unless a container is still attached
// (the cluster removes a network only once no task uses it, so that is a task on its way out).
func (s *Service) SetOverlays(nets []Network) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]bool{}
	var errs []error
	for _, n := range nets {
		n.Driver = DriverOverlay
		want[n.ID] = true
		if old := s.nets[n.ID]; old != nil && old.Name == n.Name && old.Subnet == n.Subnet && old.Gateway == n.Gateway {
			continue
		}
		for _, o := range s.nets {
			if o.Name == n.Name && o.ID != n.ID {
				errs = append(errs, fmt.Errorf("overlay network %s: a local network of that name exists", n.Name))
			}
		}
		c := n
		s.nets[n.ID] = &c
		if err := s.saveNetwork(&c); err != nil {
			errs = append(errs, err)
		}
	}
	for id, n := range s.nets {
		if n.Driver != DriverOverlay || want[id] || s.inUse(id) {
			continue
		}
		delete(s.nets, id)
		if err := s.deleteNetwork(id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// connectOverlay attaches sb to overlay network n at the address the cluster allocated (er.IP). The
// endpoint has no gateway: a task reaches the world through its bridge network, and the overlay only
// routes its own subnet. Called with s.mu held.
func (s *Service) connectOverlay(sb *Sandbox, n *Network, er EndpointRequest) (*Endpoint, error) {
	if s.cfg.Overlay == nil {
		return nil, errdefs.Unavailable(fmt.Errorf("network %s is a swarm network and this engine has no overlay driver", n.Name))
	}
	ip, err := netip.ParseAddr(er.IP)
	if err != nil || !n.Subnet.Contains(ip) {
		return nil, errdefs.Forbidden(fmt.Errorf("Could not attach to network %s: rpc error: code = PermissionDenied desc = network %s not manually attachable", n.Name, n.Name))
	}
	for _, ep := range sb.Endpoints {
		if ep.NetworkID == n.ID {
			return nil, errdefs.Forbidden(fmt.Errorf("endpoint with name %s already exists in network %s", sb.Name, n.Name))
		}
	}
	mac := plumbing.MACFor(ip)
	ep := &Endpoint{ID: newID(), NetworkID: n.ID, Network: n.Name, IP: ip, Prefix: n.Subnet.Bits(),
		MAC: mac.String(), Aliases: er.Aliases, IfName: fmt.Sprintf("eth%d", nextIfIndex(sb))}
	if err := s.cfg.Overlay.Attach(n.ID, sb.NetNS, ep.IfName, ip, mac); err != nil {
		return nil, err
	}
	sb.Endpoints = append(sb.Endpoints, ep)
	s.cfg.Event("connect", n.ID, map[string]string{"container": sb.ContainerID, "name": n.Name, "type": n.Driver})
	return ep, nil
}

// detachOverlays removes sb's overlay endpoints from their driver before its namespace goes. Called
// with s.mu held.
func (s *Service) detachOverlays(sb *Sandbox) {
	for _, ep := range sb.Endpoints {
		if n := s.nets[ep.NetworkID]; n == nil || n.Driver != DriverOverlay || s.cfg.Overlay == nil {
			continue
		}
		if err := s.cfg.Overlay.Detach(ep.NetworkID, ep.IP); err != nil {
			s.log.Warn("detaching from overlay network", "network", ep.Network, "err", err)
		}
	}
}

// Upstream lists the host's resolvers (what the embedded DNS servers forward other names to).
func (s *Service) Upstream() []string { return append([]string(nil), s.upstream...) }
