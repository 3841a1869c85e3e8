package network

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Create makes a user-defined bridge network.
func (s *Service) Create(req CreateRequest) (Network, error) {
	if req.Name == "" {
		return Network{}, errdefs.InvalidParameter(errors.New("network name cannot be empty"))
	}
	if !validName.MatchString(req.Name) {
		return Network{}, errdefs.InvalidParameter(fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name))
	}
	switch req.Driver {
	case "", DriverBridge:
	case DriverHost, DriverNull:
		return Network{}, errdefs.Forbidden(fmt.Errorf("only one instance of \"%s\" network is allowed", req.Driver))
	default:
		return Network{}, errdefs.NotFound(fmt.Errorf("could not find plugin %s in v1 plugin registry: plugin not found", req.Driver))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nets {
		if n.Name == req.Name {
			return Network{}, errdefs.Conflict(fmt.Errorf("network with name %s already exists", req.Name))
		}
	}
	n := &Network{ID: newID(), Name: req.Name, Driver: DriverBridge, Internal: req.Internal, Attachable: req.Attachable,
		Labels: req.Labels, Options: req.Options, Created: time.Now().UTC()}
	n.Bridge = "br-" + n.ID[:12]
	if name := req.Options["com.docker.network.bridge.name"]; name != "" {
		if len(name) > 15 {
			return Network{}, errdefs.InvalidParameter(fmt.Errorf("bridge name %s is longer than 15 characters", name))
		}
		n.Bridge = name
	}
	if err := s.pickAddresses(n, req); err != nil {
		return Network{}, err
	}
	if err := ensureBridge(n); err != nil {
		_ = deleteBridge(n.Bridge)
		return Network{}, errdefs.System(err)
	}
	s.nets[n.ID] = n
	s.ipam[n.ID] = newPool(n)
	undo := func() {
		delete(s.nets, n.ID)
		delete(s.ipam, n.ID)
		_ = deleteBridge(n.Bridge)
	}
	if err := s.applyRules(); err != nil {
		undo()
		_ = s.applyRules()
		return Network{}, errdefs.System(err)
	}
	if err := s.saveNetwork(n); err != nil {
		undo()
		_ = s.applyRules()
		return Network{}, err
	}
	s.startDNS(n)
	s.cfg.Event("create", n.ID, map[string]string{"name": n.Name, "type": n.Driver})
	return *n, nil
}

func (s *Service) pickAddresses(n *Network, req CreateRequest) error {
	if req.Subnet == "" {
		if req.Gateway != "" || req.IPRange != "" {
			return errdefs.InvalidParameter(errors.New("gateway and ip-range need a subnet"))
		}
		sub, err := s.freeSubnet()
		if err != nil {
			return err
		}
		n.Subnet, n.Gateway = sub, sub.Addr().Next()
		return nil
	}
	sub, err := netip.ParsePrefix(req.Subnet)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid subnet %s : invalid CIDR address: %s", req.Subnet, req.Subnet))
	}
	if !sub.Addr().Is4() {
		return errdefs.InvalidParameter(errors.New("IPv6 networks are not supported yet"))
	}
	if sub.Bits() > 30 {
		return errdefs.InvalidParameter(fmt.Errorf("subnet %s is too small for a bridge network", req.Subnet))
	}
	if sub != sub.Masked() {
		return errdefs.InvalidParameter(fmt.Errorf("invalid subnet %s: it should be %s", req.Subnet, sub.Masked()))
	}
	for _, o := range s.nets {
		if o.Subnet.IsValid() && o.Subnet.Overlaps(sub) {
			return errdefs.Forbidden(errors.New("invalid pool request: Pool overlaps with other one on this address space"))
		}
	}
	n.Subnet = sub
	n.Gateway = sub.Addr().Next()
	if req.Gateway != "" {
		gw, err := netip.ParseAddr(req.Gateway)
		if err != nil || !sub.Contains(gw) {
			return errdefs.InvalidParameter(fmt.Errorf("no matching subnet for gateway %s", req.Gateway))
		}
		n.Gateway = gw
	}
	if req.IPRange != "" {
		r, err := netip.ParsePrefix(req.IPRange)
		if err != nil || !sub.Contains(r.Addr()) || r.Bits() < sub.Bits() {
			return errdefs.InvalidParameter(fmt.Errorf("no matching subnet for range %s", req.IPRange))
		}
		n.IPRange = r.Masked()
	}
	return nil
}

// Remove deletes a user-defined network that no running container is attached to.
func (s *Service) Remove(ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.lookup(ref)
	if err != nil {
		return err
	}
	return s.remove(n)
}

func (s *Service) remove(n *Network) error {
	if n.Default || n.Driver != DriverBridge {
		return errdefs.Forbidden(fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name))
	}
	if s.inUse(n.ID) {
		return errdefs.Forbidden(fmt.Errorf("error while removing network: network %s has active endpoints", n.Name))
	}
	if d := s.dns[n.ID]; d != nil {
		d.Close()
		delete(s.dns, n.ID)
	}
	delete(s.nets, n.ID)
	delete(s.ipam, n.ID)
	if err := s.deleteNetwork(n.ID); err != nil {
		return err
	}
	if err := deleteBridge(n.Bridge); err != nil {
		s.log.Warn("deleting bridge", "bridge", n.Bridge, "err", err)
	}
	if err := s.applyRules(); err != nil {
		s.log.Warn("updating rules", "err", err)
	}
	s.cfg.Event("destroy", n.ID, map[string]string{"name": n.Name, "type": n.Driver})
	return nil
}

// Prune removes the user-defined networks keep does not protect and no container uses; used says
// whether any container (running or not) refers to a network by ID.
func (s *Service) Prune(keep func(Network) bool, used func(id string) bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var removed []string
	for _, n := range s.nets {
		if n.Default || n.Driver != DriverBridge || s.inUse(n.ID) || used(n.ID) || keep(*n) {
			continue
		}
		if err := s.remove(n); err == nil {
			removed = append(removed, n.Name)
		}
	}
	return removed
}
