package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/plumbing"
)

// Setup creates a container's network namespace, attaches it to the requested networks and publishes
// its ports. On error nothing is left behind.
func (s *Service) Setup(ctx context.Context, req SandboxRequest) (Sandbox, error) {
	start := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.log.Debug("network setup", "container", req.ContainerID, "took", time.Since(start)) }()
	if old, ok := s.sbs[req.ContainerID]; ok {
		// A leftover of a run whose exit we never saw through (berthd died meanwhile).
		s.teardown(old)
	}
	sb := &Sandbox{ContainerID: req.ContainerID, Name: req.Name, Hostname: req.Hostname, DNS: req.DNS,
		NetNS: filepath.Join(s.netnsDir(), req.ContainerID)}
	_ = plumbing.RemoveNetNS(sb.NetNS)
	if err := plumbing.NewNetNS(sb.NetNS); err != nil {
		return Sandbox{}, errdefs.System(err)
	}
	fail := func(err error) (Sandbox, error) {
		s.teardown(sb)
		return Sandbox{}, err
	}
	for _, er := range req.Endpoints {
		if _, err := s.connect(sb, er); err != nil {
			return fail(err)
		}
	}
	if err := s.publish(sb, req.Ports); err != nil {
		return fail(err)
	}
	if err := s.saveSandbox(sb); err != nil {
		return fail(err)
	}
	s.sbs[sb.ContainerID] = sb
	if len(sb.Ports) > 0 {
		if err := s.applyRules(); err != nil {
			delete(s.sbs, sb.ContainerID)
			_ = s.deleteSandbox(sb.ContainerID)
			return fail(err)
		}
	}
	return copySandbox(sb), nil
}

// connect attaches sb to one network. Called with s.mu held.
func (s *Service) connect(sb *Sandbox, er EndpointRequest) (*Endpoint, error) {
	n, err := s.lookup(er.Network)
	if err != nil {
		return nil, err
	}
	if n.Driver == DriverOverlay {
		return s.connectOverlay(sb, n, er)
	}
	if n.Driver != DriverBridge {
		return nil, errdefs.Forbidden(errors.New("container cannot be disconnected from host network or connected to host network"))
	}
	for _, ep := range sb.Endpoints {
		if ep.NetworkID == n.ID {
			return nil, errdefs.Forbidden(fmt.Errorf("endpoint with name %s already exists in network %s", sb.Name, n.Name))
		}
	}
	var want netip.Addr
	if er.IP != "" {
		if n.Default {
			return nil, errdefs.InvalidParameter(errors.New("user specified IP address is supported on user defined networks only"))
		}
		if want, err = netip.ParseAddr(er.IP); err != nil || !want.Is4() {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid IPv4 address: %s", er.IP))
		}
	}
	if len(er.Aliases) > 0 && n.Default {
		return nil, errdefs.InvalidParameter(errors.New("network-scoped alias is supported only for containers in user defined networks"))
	}
	pl := s.ipam[n.ID]
	ip, err := pl.allocate(want)
	if err != nil {
		return nil, err
	}
	mac := plumbing.MACFor(ip).String()
	if er.MAC != "" {
		hw, err := net.ParseMAC(er.MAC)
		if err != nil {
			pl.release(ip)
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid MAC address: %s", er.MAC))
		}
		mac = hw.String()
	}
	ep := &Endpoint{
		ID: newID(), NetworkID: n.ID, Network: n.Name, IP: ip, Prefix: n.Subnet.Bits(), Gateway: n.Gateway,
		MAC: mac, Static: want.IsValid(), Aliases: er.Aliases, Veth: vethName(),
		IfName: fmt.Sprintf("eth%d", nextIfIndex(sb)),
	}
	if !n.Internal && !hasDefaultRoute(sb) {
		ep.DefaultRoute = true
	}
	if n.Internal {
		ep.Gateway = netip.Addr{}
	}
	if err := attach(n, ep, sb.NetNS); err != nil {
		pl.release(ip)
		return nil, errdefs.System(err)
	}
	sb.Endpoints = append(sb.Endpoints, ep)
	s.cfg.Event("connect", n.ID, map[string]string{"container": sb.ContainerID, "name": n.Name, "type": n.Driver})
	return ep, nil
}

func nextIfIndex(sb *Sandbox) int {
	used := map[string]bool{}
	for _, ep := range sb.Endpoints {
		used[ep.IfName] = true
	}
	for i := 0; ; i++ {
		if !used[fmt.Sprintf("eth%d", i)] {
			return i
		}
	}
}

func hasDefaultRoute(sb *Sandbox) bool {
	for _, ep := range sb.Endpoints {
		if ep.DefaultRoute {
			return true
		}
	}
	return false
}

// Teardown undoes Setup: published ports, links, addresses and the namespace. Tearing down a container
// without a sandbox is not an error.
func (s *Service) Teardown(containerID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.sbs[containerID]
	if !ok {
		return nil
	}
	s.teardown(sb)
	return nil
}

// teardown removes everything of sb. Called with s.mu held; failures are logged, as there is no one to
// return them to who could do better.
//
// Deleting a veth waits for an RCU grace period (20-40 ms here), so the links go in the background: the
// exit of a container, and `run --rm`, do not wait for it. The addresses stay taken until the links are
// gone, so no new container can meet its predecessor's interface on the bridge.
func (s *Service) teardown(sb *Sandbox) {
	hadPorts := len(sb.Ports) > 0
	_, recorded := s.sbs[sb.ContainerID]
	delete(s.sbs, sb.ContainerID)
	if hadPorts && recorded {
		if err := s.applyRules(); err != nil {
			s.log.Warn("removing published ports", "container", sb.ContainerID, "err", err)
		}
	}
	s.detachOverlays(sb)
	if err := plumbing.RemoveNetNS(sb.NetNS); err != nil {
		s.log.Warn("removing network namespace", "path", sb.NetNS, "err", err)
	}
	if recorded {
		if err := s.deleteSandbox(sb.ContainerID); err != nil {
			s.log.Warn("forgetting sandbox", "container", sb.ContainerID, "err", err)
		}
	}
	for _, ep := range sb.Endpoints {
		s.cfg.Event("disconnect", ep.NetworkID, map[string]string{"container": sb.ContainerID, "name": ep.Network, "type": DriverBridge})
	}
	s.unlinking.Add(1)
	go func() {
		defer s.unlinking.Done()
		for _, ep := range sb.Endpoints {
			if ep.Veth == "" {
				continue // an overlay endpoint: its driver removed the link
			}
			if err := deleteLink(ep.Veth); err != nil {
				s.log.Warn("deleting veth", "veth", ep.Veth, "err", err)
			}
		}
		s.mu.Lock()
		s.forget(sb)
		s.mu.Unlock()
	}()
}

// forget releases sb's addresses.
func (s *Service) forget(sb *Sandbox) {
	for _, ep := range sb.Endpoints {
		if p := s.ipam[ep.NetworkID]; p != nil {
			p.release(ep.IP)
		}
	}
}

// Connect attaches a running container's sandbox to another network.
func (s *Service) Connect(ctx context.Context, containerID string, er EndpointRequest) (Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.sbs[containerID]
	if !ok {
		return Endpoint{}, errdefs.Conflict(errors.New("container has no network namespace of its own to connect"))
	}
	ep, err := s.connect(sb, er)
	if err != nil {
		return Endpoint{}, err
	}
	if err := s.saveSandbox(sb); err != nil {
		return Endpoint{}, err
	}
	return *ep, nil
}

// Disconnect detaches a running container from one network.
func (s *Service) Disconnect(ctx context.Context, containerID, network string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.lookup(network)
	if err != nil {
		return err
	}
	sb, ok := s.sbs[containerID]
	if !ok {
		return nil
	}
	for i, ep := range sb.Endpoints {
		if ep.NetworkID != n.ID {
			continue
		}
		if n.Driver == DriverOverlay {
			if err := s.cfg.Overlay.Detach(n.ID, ep.IP); err != nil {
				return errdefs.System(err)
			}
		} else {
			if err := detachInside(sb.NetNS, ep.IfName); err != nil {
				return errdefs.System(err)
			}
			_ = deleteLink(ep.Veth)
		}
		if p := s.ipam[n.ID]; p != nil {
			p.release(ep.IP)
		}
		sb.Endpoints = append(sb.Endpoints[:i], sb.Endpoints[i+1:]...)
		// Ports DNATed to the address on this network would lead nowhere now.
		kept := sb.Ports[:0]
		for _, p := range sb.Ports {
			if p.CtrIP != ep.IP {
				kept = append(kept, p)
			}
		}
		changed := len(kept) != len(sb.Ports)
		sb.Ports = kept
		if changed {
			if err := s.applyRules(); err != nil {
				return err
			}
		}
		s.cfg.Event("disconnect", n.ID, map[string]string{"container": containerID, "name": n.Name, "type": n.Driver})
		return s.saveSandbox(sb)
	}
	return errdefs.NotFound(fmt.Errorf("container %s is not connected to network %s", shortID(containerID), n.Name))
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// publish picks host ports for reqs and records them on sb. Called with s.mu held.
func (s *Service) publish(sb *Sandbox, reqs []PortRequest) error {
	if len(reqs) == 0 {
		return nil
	}
	var target netip.Addr
	for _, ep := range sb.Endpoints {
		if ep.DefaultRoute || !target.IsValid() {
			target = ep.IP
		}
	}
	if !target.IsValid() {
		return nil // no bridge address: nothing to forward to (Docker ignores them too)
	}
	for _, r := range reqs {
		p := Port{Proto: strings.ToLower(r.Proto), HostPort: r.HostPort, CtrPort: r.CtrPort, CtrIP: target}
		if p.Proto == "" {
			p.Proto = "tcp"
		}
		if p.Proto != "tcp" && p.Proto != "udp" {
			return errdefs.InvalidParameter(fmt.Errorf("invalid proto: %s", r.Proto))
		}
		if r.HostIP != "" {
			a, err := netip.ParseAddr(r.HostIP)
			if err != nil || !a.Is4() {
				if err == nil && a.Is6() {
					continue // no IPv6 yet: skip, as Docker does for families it has not enabled
				}
				return errdefs.InvalidParameter(fmt.Errorf("invalid host IP address: %s", r.HostIP))
			}
			if !a.IsUnspecified() {
				p.HostIP = a
			}
		}
		if p.HostPort == 0 {
			hp, err := s.freeHostPort(sb, p)
			if err != nil {
				return err
			}
			p.HostPort = hp
		} else if err := s.portFree(sb, p); err != nil {
			return err
		}
		sb.Ports = append(sb.Ports, p)
	}
	return nil
}

// portFree checks p's host port against other containers' ports and the host's own listeners.
func (s *Service) portFree(sb *Sandbox, p Port) error {
	host := "0.0.0.0"
	if p.HostIP.IsValid() {
		host = p.HostIP.String()
	}
	taken := func(q Port) bool {
		return q.Proto == p.Proto && q.HostPort == p.HostPort &&
			(!q.HostIP.IsValid() || !p.HostIP.IsValid() || q.HostIP == p.HostIP)
	}
	for _, other := range s.sbs {
		for _, q := range other.Ports {
			if taken(q) {
				return errdefs.Conflict(fmt.Errorf("Bind for %s:%d failed: port is already allocated", host, p.HostPort))
			}
		}
	}
	for _, q := range sb.Ports {
		if taken(q) {
			return errdefs.Conflict(fmt.Errorf("Bind for %s:%d failed: port is already allocated", host, p.HostPort))
		}
	}
	// A host program listening there would be shadowed by the DNAT rule without noticing.
	addr := net.JoinHostPort(host, fmt.Sprint(p.HostPort))
	if p.Proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return errdefs.Conflict(fmt.Errorf("failed to bind host port %s/udp: address already in use", addr))
		}
		c.Close()
		return nil
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return errdefs.Conflict(fmt.Errorf("failed to bind host port %s/tcp: address already in use", addr))
	}
	l.Close()
	return nil
}

// freeHostPort picks a port from the ephemeral range Docker uses for -P and -p with no host port.
func (s *Service) freeHostPort(sb *Sandbox, p Port) (uint16, error) {
	const lo, hi = 49153, 60999
	start := lo + int(s.portCursor)%(hi-lo+1)
	for i := 0; i <= hi-lo; i++ {
		port := lo + (start-lo+i)%(hi-lo+1)
		p.HostPort = uint16(port)
		if s.portFree(sb, p) == nil {
			s.portCursor = uint32(port - lo + 1)
			return p.HostPort, nil
		}
	}
	return 0, errdefs.Unavailable(errors.New("no free host port in the range 49153-60999"))
}

// Rename changes the name a container's sandbox answers to in DNS and shows in inspect.
func (s *Service) Rename(containerID, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.sbs[containerID]
	if !ok {
		return
	}
	sb.Name = name
	if err := s.saveSandbox(sb); err != nil {
		s.log.Warn("saving renamed sandbox", "container", containerID, "err", err)
	}
}
