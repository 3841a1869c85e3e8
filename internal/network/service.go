package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network/plumbing"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketNetworks  = []byte("networks")
	bucketSandboxes = []byte("net-sandboxes")
)

// Config wires the service.
type Config struct {
	DB       *bolt.DB
	ExecRoot string // namespaces are pinned under ExecRoot/netns
	// DefaultBridge names the default bridge's interface (Docker's docker0); "" = berth0.
	DefaultBridge string
	// DefaultCIDR is the default bridge's gateway address and prefix (--bip), "" = chosen to avoid the
	// host's routes.
	DefaultCIDR string
	Logger      *slog.Logger
	// Event reports network events (create, destroy, connect, disconnect).
	Event func(action, id string, attrs map[string]string)
	// ResolvConf is the host's resolver configuration; "" = /etc/resolv.conf.
	ResolvConf string
	// Overlay attaches endpoints of overlay networks; nil = this engine joins none.
	Overlay Overlay
}

// Service manages networks and container sandboxes. One mutex serializes all changes: they touch the
// kernel's shared state (links, addresses, the rule table), and each takes well under a millisecond.
type Service struct {
	cfg   Config
	log   *slog.Logger
	table string // nftables table name
	mu    sync.Mutex
	nets  map[string]*Network // by ID
	sbs   map[string]*Sandbox // by container ID
	ipam  map[string]*pool    // by network ID
	dns   map[string]*DNSServer
	// upstream are the host's resolvers, for embedded DNS forwarding and default-bridge resolv.conf.
	upstream   []string
	portCursor uint32 // where the search for a free host port starts
	unlinking  sync.WaitGroup
}

// Open loads the recorded networks and sandboxes, makes sure the predefined networks, bridges and
// rules exist, and starts the DNS servers. Running containers' namespaces and links are left alone.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.DefaultBridge == "" {
		cfg.DefaultBridge = "berth0"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Event == nil {
		cfg.Event = func(string, string, map[string]string) {}
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger,
		table: tableName(cfg.DefaultBridge),
		nets:  map[string]*Network{}, sbs: map[string]*Sandbox{},
		ipam: map[string]*pool{}, dns: map[string]*DNSServer{},
	}
	s.upstream = hostNameservers(cfg.ResolvConf)
	if err := plumbing.PrivateDir(s.netnsDir()); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := enableForwarding(); err != nil {
		s.log.Warn("enabling IPv4 forwarding", "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensurePredefined(); err != nil {
		return nil, err
	}
	for _, n := range s.nets {
		if n.Driver != DriverBridge {
			continue
		}
		if err := ensureBridge(n); err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Name, err)
		}
	}
	// Sandboxes whose namespace is gone (the host rebooted) hold nothing any more.
	for id, sb := range s.sbs {
		if _, err := os.Stat(sb.NetNS); err != nil {
			s.forget(sb)
			delete(s.sbs, id)
			_ = s.deleteSandbox(id)
		}
	}
	// Pins without a sandbox record are from a berthd that died in the middle of a setup; their links
	// go with them.
	if ents, err := os.ReadDir(s.netnsDir()); err == nil {
		for _, e := range ents {
			if _, ok := s.sbs[e.Name()]; !ok {
				_ = plumbing.RemoveNetNS(filepath.Join(s.netnsDir(), e.Name()))
			}
		}
	}
	if err := s.applyRules(); err != nil {
		return nil, err
	}
	for _, n := range s.nets {
		s.startDNS(n)
	}
	return s, nil
}

// tableName keeps the rules of daemons with different default bridges (tests, several daemons on one
// host) apart.
func tableName(bridge string) string {
	if bridge == "berth0" {
		return "berth"
	}
	return "berth-" + bridge
}

func (s *Service) netnsDir() string { return filepath.Join(s.cfg.ExecRoot, "netns") }

// Close stops the DNS servers and lets veth deletions under way finish. Links, namespaces and rules of
// running containers stay: they keep running without berthd.
func (s *Service) Close() {
	s.unlinking.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, d := range s.dns {
		d.Close()
		delete(s.dns, id)
	}
}

func (s *Service) load() error {
	return s.cfg.DB.Update(func(tx *bolt.Tx) error {
		nb, err := tx.CreateBucketIfNotExists(bucketNetworks)
		if err != nil {
			return err
		}
		sb, err := tx.CreateBucketIfNotExists(bucketSandboxes)
		if err != nil {
			return err
		}
		if err := nb.ForEach(func(k, v []byte) error {
			var n Network
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("network %s: %w", k, err)
			}
			s.nets[n.ID] = &n
			if n.Driver == DriverBridge {
				s.ipam[n.ID] = newPool(&n)
			}
			return nil
		}); err != nil {
			return err
		}
		return sb.ForEach(func(k, v []byte) error {
			var x Sandbox
			if err := json.Unmarshal(v, &x); err != nil {
				return fmt.Errorf("sandbox %s: %w", k, err)
			}
			s.sbs[x.ContainerID] = &x
			for _, ep := range x.Endpoints {
				if p := s.ipam[ep.NetworkID]; p != nil {
					p.take(ep.IP)
				}
			}
			return nil
		})
	})
}

func (s *Service) saveNetwork(n *Network) error {
	data, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return s.cfg.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNetworks).Put([]byte(n.ID), data) })
}

func (s *Service) deleteNetwork(id string) error {
	return s.cfg.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNetworks).Delete([]byte(id)) })
}

func (s *Service) saveSandbox(sb *Sandbox) error {
	data, err := json.Marshal(sb)
	if err != nil {
		return err
	}
	return s.cfg.DB.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSandboxes).Put([]byte(sb.ContainerID), data)
	})
}

func (s *Service) deleteSandbox(id string) error {
	return s.cfg.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSandboxes).Delete([]byte(id)) })
}

// ensurePredefined creates the bridge, host and none networks the first time berthd runs, and applies
// a changed --bip to the default bridge while no container uses it.
func (s *Service) ensurePredefined() error {
	have := map[string]*Network{}
	for _, n := range s.nets {
		have[n.Name] = n
	}
	for _, p := range []struct{ name, driver string }{{"host", DriverHost}, {"none", DriverNull}} {
		if have[p.name] == nil {
			n := &Network{ID: newID(), Name: p.name, Driver: p.driver, Created: time.Now().UTC()}
			if err := s.saveNetwork(n); err != nil {
				return err
			}
			s.nets[n.ID] = n
		}
	}
	def := have["bridge"]
	if def != nil && def.Bridge == s.cfg.DefaultBridge && (s.cfg.DefaultCIDR == "" || cidrOf(def) == s.cfg.DefaultCIDR) {
		return nil
	}
	if def != nil && s.inUse(def.ID) {
		s.log.Warn("default bridge settings changed while containers use it; keeping the old ones until they stop")
		return nil
	}
	n := &Network{ID: newID(), Name: "bridge", Driver: DriverBridge, Bridge: s.cfg.DefaultBridge, Default: true,
		Created: time.Now().UTC(), Options: map[string]string{
			"com.docker.network.bridge.default_bridge":       "true",
			"com.docker.network.bridge.enable_icc":           "true",
			"com.docker.network.bridge.enable_ip_masquerade": "true",
			"com.docker.network.bridge.host_binding_ipv4":    "0.0.0.0",
			"com.docker.network.bridge.name":                 s.cfg.DefaultBridge,
			"com.docker.network.driver.mtu":                  "1500",
		}}
	if def != nil {
		n.ID, n.Created = def.ID, def.Created
		if def.Bridge != n.Bridge {
			_ = deleteBridge(def.Bridge)
		}
	}
	if s.cfg.DefaultCIDR != "" {
		p, err := netip.ParsePrefix(s.cfg.DefaultCIDR)
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("invalid --bip %q: want an IPv4 address with a prefix length, like 172.17.0.1/16", s.cfg.DefaultCIDR)
		}
		n.Gateway, n.Subnet = p.Addr(), p.Masked()
	} else {
		delete(s.nets, n.ID) // its old subnet must not count as taken
		sub, err := s.freeSubnet()
		if err != nil {
			return err
		}
		n.Subnet, n.Gateway = sub, sub.Addr().Next()
	}
	if err := s.saveNetwork(n); err != nil {
		return err
	}
	s.nets[n.ID] = n
	s.ipam[n.ID] = newPool(n)
	return nil
}

func cidrOf(n *Network) string {
	return netip.PrefixFrom(n.Gateway, n.Subnet.Bits()).String()
}

// inUse reports whether a sandbox is attached to network id.
func (s *Service) inUse(id string) bool {
	for _, sb := range s.sbs {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == id {
				return true
			}
		}
	}
	return false
}

// lookup finds a network by full ID, name, or unique ID prefix, as Docker does.
func (s *Service) lookup(ref string) (*Network, error) {
	if ref == "" {
		return nil, errdefs.NotFound(errors.New("network  not found"))
	}
	if n, ok := s.nets[ref]; ok {
		return n, nil
	}
	for _, n := range s.nets {
		if n.Name == ref {
			return n, nil
		}
	}
	var found *Network
	for id, n := range s.nets {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("network %s is ambiguous (%d matches found based on ID prefix)", ref, 2))
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.NotFound(fmt.Errorf("network %s not found", ref))
	}
	return found, nil
}

// Get returns a copy of a network.
func (s *Service) Get(ref string) (Network, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.lookup(ref)
	if err != nil {
		return Network{}, err
	}
	return *n, nil
}

// All returns copies of every network, sorted by name.
func (s *Service) All() []Network {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Network, 0, len(s.nets))
	for _, n := range s.nets {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Sandbox returns a copy of a container's sandbox, or false.
func (s *Service) Sandbox(containerID string) (Sandbox, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb, ok := s.sbs[containerID]
	if !ok {
		return Sandbox{}, false
	}
	return copySandbox(sb), true
}

// Sandboxes returns copies of the sandboxes attached to network id.
func (s *Service) Sandboxes(networkID string) []Sandbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Sandbox
	for _, sb := range s.sbs {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == networkID {
				out = append(out, copySandbox(sb))
				break
			}
		}
	}
	return out
}

func copySandbox(sb *Sandbox) Sandbox {
	c := *sb
	c.Endpoints = make([]*Endpoint, len(sb.Endpoints))
	for i, ep := range sb.Endpoints {
		e := *ep
		c.Endpoints[i] = &e
	}
	c.Ports = append([]Port(nil), sb.Ports...)
	return c
}

// DefaultGateway is the default bridge's address: what --add-host host-gateway means.
func (s *Service) DefaultGateway() netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nets {
		if n.Default {
			return n.Gateway
		}
	}
	return netip.Addr{}
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func enableForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	return os.WriteFile(p, []byte("1"), 0o644)
}
