package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/berth-dev/berth/internal/cluster"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/network/overlay"
)

// overlayAgent puts the cluster's overlay networks on this host: it is the cluster's NetworkAgent (the
// networks, their peers and services) and the network service's Overlay (task endpoints). The driver
// is made on the first view, when the node's underlay address is known.
type overlayAgent struct {
	dir string
	log *slog.Logger
	// nets is the engine's network service; set once it is open.
	nets *network.Service

	// mu serializes SetNetworks. Attach and Detach run under the network service's lock, which
	// SetNetworks takes too (SetOverlays): they read the driver through cur, never through mu.
	mu       sync.Mutex
	drv      *overlay.Driver
	cur      atomic.Pointer[overlay.Driver]
	underlay netip.Addr
	have     map[string]map[string]bool // network ID -> service names set on it
}

func newOverlayAgent(execRoot string, log *slog.Logger) *overlayAgent {
	return &overlayAgent{dir: filepath.Join(execRoot, "overlay"), log: log, have: map[string]map[string]bool{}}
}

func (a *overlayAgent) driver(underlay netip.Addr) (*overlay.Driver, error) {
	if a.drv != nil && a.underlay == underlay {
		return a.drv, nil
	}
	if a.drv != nil {
		a.drv.Close() // the node joined another cluster with another address
		a.have = map[string]map[string]bool{}
	}
	drv, err := overlay.New(overlay.Config{Dir: a.dir, Underlay: underlay, Upstream: a.nets.Upstream(), Logger: a.log})
	if err != nil {
		return nil, err
	}
	a.drv, a.underlay = drv, underlay
	a.cur.Store(drv)
	return drv, nil
}

// SetNetworks implements cluster.NetworkAgent.
func (a *overlayAgent) SetNetworks(nn cluster.NodeNetworks) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !nn.Underlay.IsValid() {
		nn.Underlay = a.underlay
	}
	fresh := a.drv == nil || a.underlay != nn.Underlay
	drv, err := a.driver(nn.Underlay)
	if err != nil {
		return err
	}
	var errs []error
	if fresh || len(nn.Networks) == 0 {
		// What an earlier run (or this node's previous cluster) left in the kernel and is not wanted
		// now goes first: its VXLAN IDs may be those of the networks about to be set up.
		var keep []string
		for _, v := range nn.Networks {
			keep = append(keep, v.Spec.ID)
		}
		errs = append(errs, drv.Prune(keep))
	}
	var local []network.Network
	want := map[string]bool{}
	for _, v := range nn.Networks {
		// Wanted even when it fails to come up now: a network that exists stays, with its containers.
		want[v.Spec.ID] = true
		local = append(local, network.Network{ID: v.Spec.ID, Name: v.Spec.Name, Subnet: v.Spec.Subnet, Gateway: v.Spec.Gateway,
			Labels: map[string]string{}, Options: map[string]string{}})
		if err := drv.Ensure(v.Spec); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, known := a.have[v.Spec.ID]; !known {
			errs = append(errs, a.reattach(drv, v.Spec.ID))
		}
		if err := drv.SetPeers(v.Spec.ID, v.Peers); err != nil {
			errs = append(errs, err)
		}
		names := map[string]bool{}
		for _, svc := range v.Services {
			names[svc.Name] = true
		}
		// Removals first: a port a removed service held may be what a new one publishes.
		for name := range a.have[v.Spec.ID] {
			if !names[name] {
				if err := drv.RemoveService(v.Spec.ID, name); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, svc := range v.Services {
			if err := drv.SetService(v.Spec.ID, svc); err != nil {
				errs = append(errs, fmt.Errorf("service %s on network %s: %w", svc.Name, v.Spec.Name, err))
			}
		}
		a.have[v.Spec.ID] = names
	}
	if err := a.nets.SetOverlays(local); err != nil {
		errs = append(errs, err)
	}
	busy := false
	for id := range a.have {
		if want[id] {
			continue
		}
		if len(a.nets.Sandboxes(id)) > 0 {
			// Tasks of a removed service leave the store at once but stop with their grace period:
			// the network stays until their containers are gone; the agent asks again.
			busy = true
			continue
		}
		if err := drv.Delete(id); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(a.have, id)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if busy {
		return cluster.ErrNetworksBusy
	}
	return nil
}

// reattach records with the driver the endpoints local containers already have on network id: the
// driver keeps its state in memory, so after a restart of berthd the running tasks' endpoints (their
// links survived) must be attached again for their VIP rules and for Detach to find them.
func (a *overlayAgent) reattach(drv *overlay.Driver, id string) error {
	var errs []error
	for _, sb := range a.nets.Sandboxes(id) {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID != id {
				continue
			}
			mac, _ := net.ParseMAC(ep.MAC)
			if err := drv.Attach(id, overlay.Endpoint{NetNS: sb.NetNS, IfName: ep.IfName, IP: ep.IP, MAC: mac}); err != nil {
				errs = append(errs, fmt.Errorf("re-attaching %s to network %s: %w", sb.Name, id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Attach implements network.Overlay.
func (a *overlayAgent) Attach(networkID, netns, ifName string, ip netip.Addr, mac net.HardwareAddr) error {
	drv := a.cur.Load()
	if drv == nil {
		return fmt.Errorf("overlay network %s is not set up on this node", networkID)
	}
	return drv.Attach(networkID, overlay.Endpoint{NetNS: netns, IfName: ifName, IP: ip, MAC: mac})
}

// Detach implements network.Overlay.
func (a *overlayAgent) Detach(networkID string, ip netip.Addr) error {
	drv := a.cur.Load()
	if drv == nil {
		return nil
	}
	return drv.Detach(networkID, ip)
}

// Close stops the DNS servers; the networks stay for the next start to find.
func (a *overlayAgent) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.drv != nil {
		a.drv.Close()
	}
}
