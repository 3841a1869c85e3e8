package daemon

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/cluster"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	"github.com/docker/docker/api/types/filters"
	nettypes "github.com/docker/docker/api/types/network"
)

// networkBackend serves the network routes from the network service, with the container service for
// what involves containers (connect, disconnect, prune's notion of "unused").
type networkBackend struct{ d *Daemon }

func (b networkBackend) NetworkList(ctx context.Context, f filters.Args) ([]nettypes.Summary, error) {
	if err := f.Validate(map[string]bool{"name": true, "id": true, "label": true, "driver": true, "type": true, "scope": true, "dangling": true}); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	var out []nettypes.Summary
	cnets, cerr := b.d.cluster.Networks(ctx) // a manager lists the cluster's networks
	for _, n := range b.d.networks.All() {
		if n.Driver == network.DriverOverlay && cerr == nil {
			continue // listed from the cluster below
		}
		if !b.matches(n, f) {
			continue
		}
		out = append(out, b.inspect(n, false))
	}
	for _, n := range cnets {
		if cluster.MatchNetwork(n, f) {
			out = append(out, cluster.ToInspect(n))
		}
	}
	return out, nil
}

func (b networkBackend) matches(n network.Network, f filters.Args) bool {
	if f.Contains("name") && !matchAny(f.Get("name"), func(v string) bool { return strings.Contains(n.Name, v) }) {
		return false
	}
	if f.Contains("id") && !matchAny(f.Get("id"), func(v string) bool { return strings.HasPrefix(n.ID, v) }) {
		return false
	}
	if f.Contains("driver") && !f.ExactMatch("driver", n.Driver) {
		return false
	}
	scope := "local"
	if n.Driver == network.DriverOverlay {
		scope = "swarm"
	}
	if f.Contains("scope") && !f.ExactMatch("scope", scope) {
		return false
	}
	if f.Contains("label") && !f.MatchKVList("label", n.Labels) {
		return false
	}
	builtin := n.Default || n.Driver != network.DriverBridge
	if f.Contains("type") {
		t := "custom"
		if builtin {
			t = "builtin"
		}
		if !f.ExactMatch("type", t) {
			return false
		}
	}
	if f.Contains("dangling") {
		dangling := !builtin && len(b.d.containers.NetworkUsers(n.ID)) == 0
		if f.ExactMatch("dangling", "true") || f.ExactMatch("dangling", "1") {
			return dangling
		}
		return !dangling
	}
	return true
}

func matchAny(vals []string, ok func(string) bool) bool {
	for _, v := range vals {
		if ok(v) {
			return true
		}
	}
	return false
}

func (b networkBackend) NetworkInspect(ctx context.Context, ref string) (nettypes.Inspect, error) {
	n, err := b.d.networks.Get(ref)
	if err == nil && n.Driver != network.DriverOverlay {
		return b.inspect(n, true), nil
	}
	if cn, cerr := b.d.cluster.InspectNetwork(ctx, ref); cerr == nil {
		out := cluster.ToInspect(cn)
		b.addContainers(&out, cn.ID)
		return out, nil
	}
	if err != nil {
		return nettypes.Inspect{}, err
	}
	return b.inspect(n, true), nil // a worker's view of an overlay network its tasks use
}

func (b networkBackend) inspect(n network.Network, withContainers bool) nettypes.Inspect {
	out := nettypes.Inspect{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, EnableIPv4: true,
		Internal: n.Internal, Attachable: n.Attachable, Options: n.Options, Labels: n.Labels,
		IPAM:       nettypes.IPAM{Driver: "default", Options: map[string]string{}, Config: []nettypes.IPAMConfig{}},
		Containers: map[string]nettypes.EndpointResource{},
	}
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Subnet.IsValid() {
		c := nettypes.IPAMConfig{Subnet: n.Subnet.String(), Gateway: n.Gateway.String()}
		if n.IPRange.IsValid() {
			c.IPRange = n.IPRange.String()
		}
		out.IPAM.Config = append(out.IPAM.Config, c)
	}
	if n.Driver == network.DriverOverlay {
		out.Scope = "swarm"
	}
	if withContainers {
		b.addContainers(&out, n.ID)
	}
	return out
}

// addContainers lists the local containers attached to network id.
func (b networkBackend) addContainers(out *nettypes.Inspect, id string) {
	for _, sb := range b.d.networks.Sandboxes(id) {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == id {
				out.Containers[sb.ContainerID] = nettypes.EndpointResource{
					Name: sb.Name, EndpointID: ep.ID, MacAddress: ep.MAC,
					IPv4Address: fmt.Sprintf("%s/%d", ep.IP, ep.Prefix),
				}
			}
		}
	}
}

func (b networkBackend) NetworkCreate(ctx context.Context, req nettypes.CreateRequest) (nettypes.CreateResponse, error) {
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return nettypes.CreateResponse{}, errdefs.NotImplemented(fmt.Errorf("IPv6 networks are not supported yet"))
	}
	if req.Driver == "overlay" || req.Scope == "swarm" {
		if req.Driver == "" {
			req.Driver = "overlay"
		}
		if _, err := b.d.networks.Get(req.Name); err == nil {
			return nettypes.CreateResponse{}, errdefs.Conflict(fmt.Errorf("network with name %s already exists", req.Name))
		}
		id, err := b.d.cluster.CreateNetwork(ctx, req)
		return nettypes.CreateResponse{ID: id}, err
	}
	if _, err := b.d.cluster.InspectNetwork(ctx, req.Name); err == nil {
		return nettypes.CreateResponse{}, errdefs.Conflict(fmt.Errorf("network with name %s already exists", req.Name))
	}
	if req.Scope != "" && req.Scope != "local" {
		return nettypes.CreateResponse{}, errdefs.InvalidParameter(fmt.Errorf("scope %q is not supported without a cluster", req.Scope))
	}
	cr := network.CreateRequest{Name: req.Name, Driver: req.Driver, Internal: req.Internal, Attachable: req.Attachable,
		Labels: req.Labels, Options: req.Options}
	if req.IPAM != nil {
		if d := req.IPAM.Driver; d != "" && d != "default" {
			return nettypes.CreateResponse{}, errdefs.NotFound(fmt.Errorf("IPAM driver %s not found", d))
		}
		switch len(req.IPAM.Config) {
		case 0:
		case 1:
			c := req.IPAM.Config[0]
			cr.Subnet, cr.Gateway, cr.IPRange = c.Subnet, c.Gateway, c.IPRange
		default:
			return nettypes.CreateResponse{}, errdefs.NotImplemented(fmt.Errorf("more than one subnet per network is not supported yet"))
		}
	}
	n, err := b.d.networks.Create(cr)
	if err != nil {
		return nettypes.CreateResponse{}, err
	}
	return nettypes.CreateResponse{ID: n.ID}, nil
}

func (b networkBackend) NetworkRemove(ctx context.Context, ref string) error {
	if n, err := b.d.networks.Get(ref); err == nil && n.Driver != network.DriverOverlay {
		return b.d.networks.Remove(ref)
	}
	_, err := b.d.cluster.InspectNetwork(ctx, ref)
	if err == nil {
		return b.d.cluster.RemoveNetwork(ctx, ref)
	}
	if n, lerr := b.d.networks.Get(ref); lerr == nil && n.Driver == network.DriverOverlay {
		return err // a worker's copy of a swarm network: only managers remove those
	}
	return b.d.networks.Remove(ref)
}

func (b networkBackend) NetworkPrune(ctx context.Context, f filters.Args) (nettypes.PruneReport, error) {
	if err := f.Validate(map[string]bool{"label": true, "label!": true, "until": true}); err != nil {
		return nettypes.PruneReport{}, errdefs.InvalidParameter(err)
	}
	keep := func(n network.Network) bool {
		if f.Contains("label") && !f.MatchKVList("label", n.Labels) {
			return true
		}
		if f.Contains("label!") && f.MatchKVList("label!", n.Labels) {
			return true
		}
		return false
	}
	used := func(id string) bool { return len(b.d.containers.NetworkUsers(id)) > 0 }
	removed := b.d.networks.Prune(keep, used)
	sort.Strings(removed)
	return nettypes.PruneReport{NetworksDeleted: removed}, nil
}

func (b networkBackend) NetworkConnect(ctx context.Context, ref string, req nettypes.ConnectOptions) error {
	return b.d.containers.ConnectNetwork(ctx, req.Container, ref, req.EndpointConfig)
}

func (b networkBackend) NetworkDisconnect(ctx context.Context, ref string, req nettypes.DisconnectOptions) error {
	return b.d.containers.DisconnectNetwork(ctx, req.Container, ref)
}
