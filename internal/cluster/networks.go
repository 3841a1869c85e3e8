package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/cluster/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/plumbing"
	"github.com/docker/docker/api/types/filters"
	nettypes "github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
)

// Overlay networks are cluster objects: created and removed through the managers, replicated with the
// rest of the state. The leader allocates their addresses (a subnet per network, a VIP per service and
// network, an address per task and network, and on ingress networks one per node for the routing
// mesh) in its orchestration pass, from what the store holds: nothing but the store records what is
// taken, so a new leader continues with the same picture. Each node sets the networks up from the view
// its assignments carry (NodeNetworks).

const (
	kindNetwork = "network"
	// optVXLAN is where Docker shows an overlay network's VXLAN ID (DriverState.Options).
	optVXLAN = "com.docker.network.driver.overlay.vxlanid_list"
	// firstVNI leaves the low IDs to other users of VXLAN on the hosts, as Docker's 4096 does.
	firstVNI = 4097
	// Published ports of the routing mesh that the user left to us come from Docker's range.
	firstDynamicPort, lastDynamicPort = 30000, 32767
	ingressName                       = "ingress"
)

var validNetName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// networkObject is one overlay network: Docker's swarm.Network, with the routing mesh's node addresses.
type networkObject struct {
	swarm.Network
	// NodeIPs are the nodes' own addresses on an ingress network (by node ID): the source address of
	// published-port traffic a node sends into the network.
	NodeIPs map[string]string `json:",omitempty"`
}

func toNetwork(o store.Object) networkObject {
	n := decode[networkObject](o)
	n.ID, n.Meta = o.ID, meta(o)
	return n
}

func encodeNetwork(n networkObject) []byte {
	n.Meta = swarm.Meta{}
	return encode(n)
}

// subnet returns the network's subnet and gateway.
func (n networkObject) subnet() (netip.Prefix, netip.Addr) {
	if n.IPAMOptions == nil || len(n.IPAMOptions.Configs) == 0 {
		return netip.Prefix{}, netip.Addr{}
	}
	c := n.IPAMOptions.Configs[0]
	p, _ := netip.ParsePrefix(c.Subnet)
	gw, _ := netip.ParseAddr(c.Gateway)
	return p.Masked(), gw
}

func (n networkObject) vni() uint32 {
	v, _ := strconv.ParseUint(n.DriverState.Options[optVXLAN], 10, 32)
	return uint32(v)
}

// resolveNetwork finds a cluster network by full ID, name, or unique ID prefix.
func (m *manager) resolveNetwork(ref string) (networkObject, error) {
	if o, ok := m.store.Get(kindNetwork, ref); ok {
		return toNetwork(o), nil
	}
	var found []networkObject
	for _, o := range m.store.List(kindNetwork) {
		n := toNetwork(o)
		if n.Spec.Name == ref {
			return n, nil
		}
		if strings.HasPrefix(n.ID, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return networkObject{}, errdefs.NotFound(fmt.Errorf("network %s not found", ref))
	}
	return networkObject{}, errdefs.InvalidParameter(fmt.Errorf("network %s is ambiguous (%d matches found based on ID prefix)", ref, len(found)))
}

// CreateNetwork makes an overlay network (docker network create -d overlay).
func (s *Service) CreateNetwork(ctx context.Context, req nettypes.CreateRequest) (string, error) {
	m, _, err := s.managerView()
	if err != nil {
		return "", err
	}
	if req.Driver != "overlay" {
		return "", errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = driver %s is not a swarm network driver: only overlay networks span a cluster", req.Driver))
	}
	if !validNetName.MatchString(req.Name) {
		return "", errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = name must be valid as a DNS name component: %s", req.Name))
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return "", errdefs.NotImplemented(errors.New("IPv6 overlay networks are not supported yet"))
	}
	if req.Ingress && req.Attachable {
		return "", errdefs.InvalidParameter(errors.New("rpc error: code = InvalidArgument desc = ingress network cannot be attachable"))
	}
	if req.Attachable {
		return "", errdefs.NotImplemented(errors.New("attachable overlay networks (containers outside services) are not supported by Berth yet"))
	}
	if req.IPAM != nil {
		if d := req.IPAM.Driver; d != "" && d != "default" {
			return "", errdefs.NotFound(fmt.Errorf("IPAM driver %s not found", d))
		}
		if len(req.IPAM.Config) > 1 {
			return "", errdefs.NotImplemented(errors.New("more than one subnet per network is not supported yet"))
		}
	}
	var resp createNetworkResponse
	if err := s.leaderCall(ctx, m, opCreateNetwork, req, &resp); err != nil {
		return "", err
	}
	m.waitIndex(ctx, resp.Index)
	return resp.ID, nil
}

type createNetworkResponse struct {
	ID    string `json:"id"`
	Index uint64 `json:"index"`
}

// createNetwork checks and allocates a new network and commits it (leader only). netMu makes the
// leader's allocations one at a time, each from a store that has every earlier one.
func (m *manager) createNetwork(req nettypes.CreateRequest) (createNetworkResponse, error) {
	if !m.caughtUp.Load() {
		return createNetworkResponse{}, errNotCaughtUp
	}
	m.netMu.Lock()
	defer m.netMu.Unlock()
	var subnet, gateway string
	if req.IPAM != nil && len(req.IPAM.Config) == 1 {
		subnet, gateway = req.IPAM.Config[0].Subnet, req.IPAM.Config[0].Gateway
	}
	for _, o := range m.store.List(kindNetwork) {
		n := toNetwork(o)
		if n.Spec.Name == req.Name {
			return createNetworkResponse{}, errdefs.Conflict(fmt.Errorf("network with name %s already exists", req.Name))
		}
		if req.Ingress && n.Spec.Ingress {
			return createNetworkResponse{}, errdefs.Forbidden(fmt.Errorf("rpc error: code = AlreadyExists desc = ingress network (%s) is already present", n.ID))
		}
	}
	n, err := m.newNetwork(req.Name, subnet, gateway, req.Ingress, req.Labels, req.Options)
	if err != nil {
		return createNetworkResponse{}, err
	}
	idx, err := m.applyLocal(store.Command{Time: time.Now().UTC(), Changes: []store.Change{{Op: store.OpCreate, Kind: kindNetwork, ID: n.ID, Data: encodeNetwork(n)}}})
	if err != nil {
		return createNetworkResponse{}, err
	}
	return createNetworkResponse{ID: n.ID, Index: idx}, nil
}

// newNetwork allocates a network's subnet (the given one, or the next free one of the cluster's pool)
// and VXLAN ID.
func (m *manager) newNetwork(name, subnet, gateway string, ingress bool, labels, opts map[string]string) (networkObject, error) {
	var taken []netip.Prefix
	vnis := map[uint32]bool{}
	for _, o := range m.store.List(kindNetwork) {
		n := toNetwork(o)
		p, _ := n.subnet()
		taken = append(taken, p)
		vnis[n.vni()] = true
	}
	var p netip.Prefix
	if subnet != "" {
		var err error
		if p, err = netip.ParsePrefix(subnet); err != nil || !p.Addr().Is4() || p.Bits() > 29 {
			return networkObject{}, errdefs.InvalidParameter(fmt.Errorf("invalid subnet %s: want an IPv4 prefix of /29 or larger", subnet))
		}
		p = p.Masked()
		for _, t := range taken {
			if t.Overlaps(p) {
				return networkObject{}, errdefs.Forbidden(fmt.Errorf("rpc error: code = InvalidArgument desc = subnet %s overlaps with an existing network's subnet %s", p, t))
			}
		}
	} else {
		_, c, _ := m.cluster()
		var err error
		if p, err = freeSubnet(c.DefaultAddrPool, int(c.SubnetSize), taken); err != nil {
			return networkObject{}, err
		}
	}
	gw := p.Addr().Next()
	if gateway != "" {
		g, err := netip.ParseAddr(gateway)
		if err != nil || !p.Contains(g) || g == p.Addr() {
			return networkObject{}, errdefs.InvalidParameter(fmt.Errorf("invalid gateway %s for subnet %s", gateway, p))
		}
		gw = g
	}
	vni := uint32(firstVNI)
	for vnis[vni] {
		vni++
	}
	if opts == nil {
		opts = map[string]string{}
	}
	return networkObject{Network: swarm.Network{
		ID: newID(),
		Spec: swarm.NetworkSpec{
			Annotations:         swarm.Annotations{Name: name, Labels: labels},
			DriverConfiguration: &swarm.Driver{Name: "overlay", Options: opts},
			Ingress:             ingress,
			IPAMOptions:         &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default"}, Configs: []swarm.IPAMConfig{{Subnet: p.String(), Gateway: gw.String()}}},
		},
		DriverState: swarm.Driver{Name: "overlay", Options: map[string]string{optVXLAN: strconv.Itoa(int(vni))}},
		IPAMOptions: &swarm.IPAMOptions{Driver: swarm.Driver{Name: "default"}, Configs: []swarm.IPAMConfig{{Subnet: p.String(), Gateway: gw.String()}}},
	}}, nil
}

// freeSubnet returns the first subnet of size bits in pools that overlaps none of taken.
func freeSubnet(pools []string, bits int, taken []netip.Prefix) (netip.Prefix, error) {
	for _, ps := range pools {
		pool, err := netip.ParsePrefix(ps)
		if err != nil || !pool.Addr().Is4() || bits < pool.Bits() || bits > 29 {
			continue
		}
		pool = pool.Masked()
		step := uint32(1) << (32 - bits)
		base := addrU32(pool.Addr())
		for i := uint32(0); i < uint32(1)<<(bits-pool.Bits()); i++ {
			c := netip.PrefixFrom(u32Addr(base+i*step), bits)
			free := true
			for _, t := range taken {
				if t.IsValid() && t.Overlaps(c) {
					free = false
					break
				}
			}
			if free {
				return c, nil
			}
		}
	}
	return netip.Prefix{}, errdefs.Unavailable(errors.New("rpc error: code = ResourceExhausted desc = could not find an available IP subnet in the cluster's address pools"))
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func u32Addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Networks lists the cluster's networks matching f (name, id, label, driver, scope).
func (s *Service) Networks(ctx context.Context) ([]swarm.Network, error) {
	m, _, err := s.managerView()
	if err != nil {
		return nil, err
	}
	var out []swarm.Network
	for _, o := range m.store.List(kindNetwork) {
		out = append(out, toNetwork(o).Network)
	}
	return out, nil
}

// InspectNetwork describes one cluster network.
func (s *Service) InspectNetwork(ctx context.Context, ref string) (swarm.Network, error) {
	m, _, err := s.managerView()
	if err != nil {
		return swarm.Network{}, err
	}
	n, err := m.resolveNetwork(ref)
	return n.Network, err
}

// RemoveNetwork deletes a cluster network no service uses.
func (s *Service) RemoveNetwork(ctx context.Context, ref string) error {
	m, _, err := s.managerView()
	if err != nil {
		return err
	}
	n, err := m.resolveNetwork(ref)
	if err != nil {
		return err
	}
	for _, o := range m.store.List(kindService) {
		sv := toService(o)
		if n.Spec.Ingress && usesIngress(sv) {
			return errdefs.Forbidden(fmt.Errorf("rpc error: code = FailedPrecondition desc = ingress network cannot be removed because service %s depends on it", sv.ID))
		}
		for _, na := range sv.Spec.TaskTemplate.Networks {
			if na.Target == n.ID {
				return errdefs.Forbidden(fmt.Errorf("rpc error: code = FailedPrecondition desc = network %s is in use by service %s", n.ID, sv.ID))
			}
		}
	}
	// Tasks of a removed service may still be stopping, attached: the network goes once they have.
	for _, o := range m.store.List(kindTask) {
		t := toTask(o)
		if taskEnded(t) {
			continue
		}
		for _, at := range t.NetworksAttachments {
			if at.Network.ID == n.ID {
				return errdefs.Forbidden(fmt.Errorf("rpc error: code = FailedPrecondition desc = network %s is in use by task %s", n.ID, t.ID))
			}
		}
	}
	return s.apply(ctx, m, store.Change{Op: store.OpDelete, Kind: kindNetwork, ID: n.ID})
}

// resolveServiceNetworks replaces the network names of a service spec by the networks' IDs (the docker
// CLI sends IDs already; the API allows names) and checks they exist.
func (m *manager) resolveServiceNetworks(spec *swarm.ServiceSpec) error {
	//nolint:staticcheck // the deprecated field still arrives from old clients
	if len(spec.TaskTemplate.Networks) == 0 && len(spec.Networks) > 0 {
		spec.TaskTemplate.Networks, spec.Networks = spec.Networks, nil //nolint:staticcheck
	}
	seen := map[string]bool{}
	for i, na := range spec.TaskTemplate.Networks {
		n, err := m.resolveNetwork(na.Target)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = NotFound desc = network %s not found", na.Target))
			}
			return err
		}
		if n.Spec.Ingress {
			return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = service cannot be explicitly attached to the ingress network %q", n.Spec.Name))
		}
		if seen[n.ID] {
			return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = duplicate network attachment %s", na.Target))
		}
		seen[n.ID] = true
		spec.TaskTemplate.Networks[i].Target = n.ID
	}
	return nil
}

// checkPublishedPorts refuses a spec (of service self, "" for a new one) that publishes through the
// routing mesh when there is no ingress network, or a port another service publishes already.
func (m *manager) checkPublishedPorts(self string, spec swarm.ServiceSpec) error {
	if !usesIngress(swarm.Service{Spec: spec}) {
		return nil
	}
	ingress := false
	for _, o := range m.store.List(kindNetwork) {
		ingress = ingress || toNetwork(o).Spec.Ingress
	}
	if !ingress {
		return errdefs.InvalidParameter(errors.New("rpc error: code = FailedPrecondition desc = service needs ingress network, but no ingress network is present"))
	}
	taken := map[string]swarm.Service{}
	for _, o := range m.store.List(kindService) {
		sv := toService(o)
		if sv.ID == self {
			continue
		}
		for _, p := range sv.Endpoint.Ports {
			if p.PublishMode == swarm.PortConfigPublishModeIngress && p.PublishedPort != 0 {
				taken[portKey(p)] = sv
			}
		}
	}
	for _, p := range endpoint(spec, swarm.Endpoint{}, nil).Ports {
		if p.PublishMode != swarm.PortConfigPublishModeIngress || p.PublishedPort == 0 {
			continue
		}
		if sv, ok := taken[portKey(p)]; ok {
			return errdefs.InvalidParameter(fmt.Errorf("rpc error: code = InvalidArgument desc = port '%d' is already in use by service '%s' (%s) as an ingress port", p.PublishedPort, sv.Spec.Name, sv.ID))
		}
	}
	return nil
}

// usesIngress reports whether a service publishes ports through the routing mesh.
func usesIngress(sv swarm.Service) bool {
	if ep := sv.Spec.EndpointSpec; ep != nil {
		for _, p := range ep.Ports {
			if p.PublishMode == "" || p.PublishMode == swarm.PortConfigPublishModeIngress {
				return true
			}
		}
	}
	return false
}

// ingressChange creates the ingress network, made at swarm init as Docker does.
func (m *manager) ingressChange() (store.Change, error) {
	n, err := m.newNetwork(ingressName, "", "", true, nil, nil)
	if err != nil {
		return store.Change{}, err
	}
	return store.Change{Op: store.OpCreate, Kind: kindNetwork, ID: n.ID, Data: encodeNetwork(n)}, nil
}

// ToInspect is a cluster network in the shape of the network routes.
func ToInspect(n swarm.Network) nettypes.Inspect {
	out := nettypes.Inspect{
		Name: n.Spec.Name, ID: n.ID, Created: n.CreatedAt, Scope: "swarm", Driver: "overlay", EnableIPv4: true,
		Ingress: n.Spec.Ingress, Attachable: n.Spec.Attachable, Labels: n.Spec.Labels,
		IPAM:       nettypes.IPAM{Driver: "default", Options: map[string]string{}, Config: []nettypes.IPAMConfig{}},
		Options:    map[string]string{},
		Containers: map[string]nettypes.EndpointResource{},
	}
	for k, v := range n.DriverState.Options {
		out.Options[k] = v
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.IPAMOptions != nil {
		for _, c := range n.IPAMOptions.Configs {
			out.IPAM.Config = append(out.IPAM.Config, nettypes.IPAMConfig{Subnet: c.Subnet, Gateway: c.Gateway})
		}
	}
	return out
}

// MatchNetwork applies the network list filters to a cluster network.
func MatchNetwork(n swarm.Network, f filters.Args) bool {
	switch {
	case f.Contains("name") && !anyContains(n.Spec.Name, f.Get("name")),
		f.Contains("id") && !anyPrefix(n.ID, f.Get("id")),
		f.Contains("driver") && !f.ExactMatch("driver", "overlay"),
		f.Contains("scope") && !f.ExactMatch("scope", "swarm"),
		f.Contains("type") && !f.ExactMatch("type", "custom"),
		f.Contains("label") && !f.MatchKVList("label", n.Spec.Labels):
		return false
	}
	return true
}

func anyContains(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// taskEnded reports whether a task's container is gone for good, so its addresses are free. An orphaned
// task (its node is down) is not: a node cut off from the managers may still run it, on its address.
func taskEnded(t swarm.Task) bool {
	switch t.Status.State {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
		swarm.TaskStateRemove:
		return true
	}
	return false
}

// allocator hands out addresses during one orchestration pass.
type allocator struct {
	nets    map[string]*allocNet
	ingress *allocNet
	ports   map[string]bool // "tcp/8080": published ports taken by the routing mesh
}

type allocNet struct {
	obj     networkObject
	subnet  netip.Prefix
	used    map[netip.Addr]bool
	changed bool
}

func newAllocator(nets []networkObject, services []swarm.Service, tasks []swarm.Task) *allocator {
	a := &allocator{nets: map[string]*allocNet{}, ports: map[string]bool{}}
	for _, n := range nets {
		p, gw := n.subnet()
		an := &allocNet{obj: n, subnet: p, used: map[netip.Addr]bool{gw: true, p.Addr(): true, plumbing.Broadcast(p): true}}
		for _, ip := range n.NodeIPs {
			if a, err := netip.ParseAddr(ip); err == nil {
				an.used[a] = true
			}
		}
		a.nets[n.ID] = an
		if n.Spec.Ingress && a.ingress == nil {
			a.ingress = an
		}
	}
	for _, sv := range services {
		for _, vip := range sv.Endpoint.VirtualIPs {
			a.mark(vip.NetworkID, vip.Addr)
		}
		for _, p := range sv.Endpoint.Ports {
			if p.PublishedPort != 0 && p.PublishMode == swarm.PortConfigPublishModeIngress {
				a.ports[portKey(p)] = true
			}
		}
	}
	for _, t := range tasks {
		if taskEnded(t) {
			continue
		}
		for _, at := range t.NetworksAttachments {
			for _, addr := range at.Addresses {
				a.mark(at.Network.ID, addr)
			}
		}
	}
	return a
}

func portKey(p swarm.PortConfig) string {
	proto := p.Protocol
	if proto == "" {
		proto = swarm.PortConfigProtocolTCP
	}
	return fmt.Sprintf("%s/%d", proto, p.PublishedPort)
}

func (a *allocator) mark(netID, cidr string) {
	n := a.nets[netID]
	if n == nil {
		return
	}
	if p, err := netip.ParsePrefix(cidr); err == nil {
		n.used[p.Addr()] = true
	}
}

// take returns a free address of n in CIDR form.
func (n *allocNet) take() (string, error) {
	first := addrU32(n.subnet.Addr())
	size := uint32(1) << (32 - n.subnet.Bits())
	for i := uint32(1); i < size-1; i++ {
		ip := u32Addr(first + i)
		if !n.used[ip] {
			n.used[ip] = true
			return netip.PrefixFrom(ip, n.subnet.Bits()).String(), nil
		}
	}
	return "", fmt.Errorf("no available IP address on network %s (%s)", n.obj.Spec.Name, n.subnet)
}

// serviceNetworks are the networks a service's tasks join: its own, and the ingress network when it
// publishes ports through the routing mesh.
func (a *allocator) serviceNetworks(sv swarm.Service) []*allocNet {
	var out []*allocNet
	for _, na := range sv.Spec.TaskTemplate.Networks {
		if n := a.nets[na.Target]; n != nil {
			out = append(out, n)
		}
	}
	if a.ingress != nil && usesIngress(sv) {
		out = append(out, a.ingress)
	}
	return out
}

// service gives sv a virtual IP on each of its networks (none in dnsrr mode) and a published port to
// each routing-mesh port that asked for any; it reports whether sv changed.
func (a *allocator) service(sv *swarm.Service) (bool, error) {
	var vips []swarm.EndpointVirtualIP
	have := map[string]string{}
	for _, v := range sv.Endpoint.VirtualIPs {
		have[v.NetworkID] = v.Addr
	}
	dnsrr := sv.Spec.EndpointSpec != nil && sv.Spec.EndpointSpec.Mode == swarm.ResolutionModeDNSRR
	var errs []error
	if !dnsrr {
		for _, n := range a.serviceNetworks(*sv) {
			addr := have[n.obj.ID]
			if addr == "" {
				var err error
				if addr, err = n.take(); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			vips = append(vips, swarm.EndpointVirtualIP{NetworkID: n.obj.ID, Addr: addr})
		}
	}
	changed := !sameVIPs(vips, sv.Endpoint.VirtualIPs)
	if changed {
		sv.Endpoint.VirtualIPs = vips
	}
	for i, p := range sv.Endpoint.Ports {
		if p.PublishedPort != 0 || p.PublishMode != swarm.PortConfigPublishModeIngress {
			continue
		}
		for port := uint32(firstDynamicPort); port <= lastDynamicPort; port++ {
			p.PublishedPort = port
			if !a.ports[portKey(p)] {
				a.ports[portKey(p)] = true
				sv.Endpoint.Ports[i].PublishedPort = port
				changed = true
				break
			}
		}
	}
	return changed, errors.Join(errs...)
}

func sameVIPs(a, b []swarm.EndpointVirtualIP) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// task gives a new task an address on each of its service's networks.
func (a *allocator) task(t *swarm.Task, sv swarm.Service) error {
	var errs []error
	for _, n := range a.serviceNetworks(sv) {
		addr, err := n.take()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		net := n.obj.Network
		net.Meta = swarm.Meta{}
		t.NetworksAttachments = append(t.NetworksAttachments, swarm.NetworkAttachment{Network: net, Addresses: []string{addr}})
	}
	return errors.Join(errs...)
}

// nodes gives every node an address on the ingress network, and forgets those of removed nodes.
func (a *allocator) nodes(nodes []swarm.Node) error {
	n := a.ingress
	if n == nil {
		return nil
	}
	live := map[string]bool{}
	for _, nd := range nodes {
		live[nd.ID] = true
	}
	for id, ip := range n.obj.NodeIPs {
		if !live[id] {
			delete(n.obj.NodeIPs, id)
			if a, err := netip.ParseAddr(ip); err == nil {
				delete(n.used, a)
			}
			n.changed = true
		}
	}
	for _, nd := range nodes {
		if n.obj.NodeIPs[nd.ID] != "" {
			continue
		}
		addr, err := n.take()
		if err != nil {
			return err
		}
		ip, _, _ := strings.Cut(addr, "/")
		if n.obj.NodeIPs == nil {
			n.obj.NodeIPs = map[string]string{}
		}
		n.obj.NodeIPs[nd.ID] = ip
		n.changed = true
	}
	return nil
}

// changes are the network objects the pass changed.
func (a *allocator) changes() []store.Change {
	var out []store.Change
	ids := make([]string, 0, len(a.nets))
	for id := range a.nets {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if n := a.nets[id]; n.changed {
			out = append(out, store.Change{Op: store.OpPut, Kind: kindNetwork, ID: id, IfVersion: n.obj.Version.Index, Data: encodeNetwork(n.obj)})
		}
	}
	return out
}
