package container

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	nw "github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

// Networks gives containers their network (internal/network.Service).
type Networks interface {
	Get(ref string) (nw.Network, error)
	Setup(ctx context.Context, req nw.SandboxRequest) (nw.Sandbox, error)
	Teardown(containerID string) error
	Connect(ctx context.Context, containerID string, er nw.EndpointRequest) (nw.Endpoint, error)
	Disconnect(ctx context.Context, containerID, network string) error
	Sandbox(containerID string) (nw.Sandbox, bool)
	Rename(containerID, name string)
	HasDNS(networkID string) bool
	DefaultGateway() netip.Addr
}

// netMode classifies a NetworkMode: "bridge" stands for every bridge network, default or user-defined.
func netMode(m container.NetworkMode) string {
	switch {
	case m == "host", m == "none":
		return string(m)
	case strings.HasPrefix(string(m), "container:"):
		return "container"
	}
	return "bridge"
}

// prepareNetworking validates a new container's network settings and puts them in Docker's stored form:
// NetworkMode names the primary network, and EndpointsConfig has an entry for each network to join.
func (s *Service) prepareNetworking(cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (*network.NetworkingConfig, error) {
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "bridge"
	}
	if nc == nil {
		nc = &network.NetworkingConfig{}
	}
	if nc.EndpointsConfig == nil {
		nc.EndpointsConfig = map[string]*network.EndpointSettings{}
	}
	if err := validatePorts(hc.PortBindings); err != nil {
		return nil, err
	}
	for _, h := range hc.ExtraHosts {
		if _, _, err := parseExtraHost(h); err != nil {
			return nil, err
		}
	}
	switch netMode(hc.NetworkMode) {
	case "host", "none":
		if len(hc.PortBindings) > 0 && hc.NetworkMode == "host" {
			hc.PortBindings = nil // Docker drops them with a warning: the ports are the host's already
		}
		if hc.NetworkMode == "host" && cfg.Hostname == "" {
			cfg.Hostname, _ = os.Hostname()
		}
		for name := range nc.EndpointsConfig {
			if name != string(hc.NetworkMode) {
				return nil, errdefs.InvalidParameter(fmt.Errorf("conflicting options: cannot attach both user-defined and non-user-defined network-modes"))
			}
		}
		nc.EndpointsConfig = map[string]*network.EndpointSettings{string(hc.NetworkMode): {}}
		return nc, nil
	case "container":
		switch {
		case len(hc.PortBindings) > 0 || hc.PublishAllPorts:
			return nil, errdefs.InvalidParameter(errors.New("conflicting options: port publishing and the container type network mode"))
		case cfg.Hostname != "":
			return nil, errdefs.InvalidParameter(errors.New("conflicting options: hostname and the network mode"))
		case len(hc.DNS) > 0:
			return nil, errdefs.InvalidParameter(errors.New("conflicting options: dns and the network mode"))
		case len(hc.ExtraHosts) > 0:
			return nil, errdefs.InvalidParameter(errors.New("conflicting options: custom host-to-IP mapping and the network mode"))
		}
		if _, err := s.get(hc.NetworkMode.ConnectedContainer()); err != nil {
			return nil, err
		}
		nc.EndpointsConfig = map[string]*network.EndpointSettings{}
		return nc, nil
	}
	if s.cfg.Networks == nil {
		return nc, nil
	}
	primary, err := s.cfg.Networks.Get(string(hc.NetworkMode))
	if err != nil {
		return nil, createNetErr(err)
	}
	if primary.Driver == nw.DriverOverlay {
		return nil, errNotAttachable(primary.Name)
	}
	if primary.Driver != nw.DriverBridge {
		return nil, errdefs.InvalidParameter(fmt.Errorf("network %s cannot be used as a container network", primary.Name))
	}
	hc.NetworkMode = container.NetworkMode(primary.Name)
	out := map[string]*network.EndpointSettings{}
	for ref, es := range nc.EndpointsConfig {
		if ref == "default" {
			ref = primary.ID // the docker CLI keys the default network's settings so
		}
		n, err := s.cfg.Networks.Get(ref)
		if err != nil {
			return nil, createNetErr(err)
		}
		if n.Driver != nw.DriverBridge && n.Driver != nw.DriverOverlay {
			return nil, errdefs.InvalidParameter(errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes"))
		}
		if n.Driver == nw.DriverOverlay && cfg.Labels[swarmTaskLabel] == "" {
			return nil, errNotAttachable(n.Name) // only the cluster's tasks, at the addresses it gave them
		}
		if es == nil {
			es = &network.EndpointSettings{}
		}
		es.NetworkID = n.ID
		out[n.Name] = es
	}
	if out[primary.Name] == nil {
		out[primary.Name] = &network.EndpointSettings{NetworkID: primary.ID}
	}
	nc.EndpointsConfig = out
	return nc, nil
}

// swarmTaskLabel marks the containers of cluster tasks.
const swarmTaskLabel = "com.docker.swarm.task.id"

// errNotAttachable is Docker's answer to a plain container joining a (non-attachable) overlay network.
func errNotAttachable(name string) error {
	return errdefs.Forbidden(fmt.Errorf("Could not attach to network %s: rpc error: code = PermissionDenied desc = network %s not manually attachable", name, name))
}

// createNetErr makes a missing network the caller's mistake (400) at create: a 404 would make the docker
// CLI take it for a missing image and try to pull one.
func createNetErr(err error) error {
	if errdefs.IsNotFound(err) {
		return errdefs.InvalidParameter(err)
	}
	return err
}

// validatePorts checks port bindings the API received, with Docker's messages.
func validatePorts(pm nat.PortMap) error {
	for p, bs := range pm {
		if _, err := nat.ParsePort(p.Port()); err != nil || p.Port() == "" {
			return errdefs.InvalidParameter(fmt.Errorf("invalid port specification: %q", string(p)))
		}
		if proto := p.Proto(); proto != "tcp" && proto != "udp" && proto != "sctp" {
			return errdefs.InvalidParameter(fmt.Errorf("invalid proto: %s", proto))
		}
		for _, b := range bs {
			if b.HostPort == "" {
				continue
			}
			if _, _, err := nat.ParsePortRange(b.HostPort); err != nil {
				return errdefs.InvalidParameter(fmt.Errorf("invalid port specification: %q", b.HostPort))
			}
			if b.HostIP != "" {
				if _, err := netip.ParseAddr(b.HostIP); err != nil {
					return errdefs.InvalidParameter(fmt.Errorf("invalid IP address: %s", b.HostIP))
				}
			}
		}
	}
	return nil
}

// parseExtraHost splits an --add-host entry ("name:ip", "name=ip", ip may be host-gateway).
func parseExtraHost(h string) (string, string, error) {
	name, ip, ok := strings.Cut(h, "=")
	if !ok {
		name, ip, ok = strings.Cut(h, ":")
	}
	if !ok || name == "" {
		return "", "", errdefs.InvalidParameter(fmt.Errorf("invalid extra host entry %q: expected name:ip", h))
	}
	ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
	if ip != "host-gateway" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return "", "", errdefs.InvalidParameter(fmt.Errorf("invalid IP address in add-host: %q", ip))
		}
	}
	return name, ip, nil
}

// setupNetwork gives a starting container its network and writes its hosts and resolv.conf. It sets
// the namespace fields of o. Called with c.mu held.
func (s *Service) setupNetwork(ctx context.Context, r *record, o *spec.Options) (teardown func(), err error) {
	hc := r.HostConfig
	none := func() {}
	switch netMode(hc.NetworkMode) {
	case "host":
		o.HostNetwork = true
		return none, s.writeNetFiles(r, nil, true)
	case "none":
		return none, s.writeNetFiles(r, nil, false)
	case "container":
		other, err := s.get(hc.NetworkMode.ConnectedContainer())
		if err != nil {
			return none, err
		}
		other.mu.Lock()
		orec := other.rec
		other.mu.Unlock()
		if orec.State.Status != "running" {
			return none, errdefs.Conflict(fmt.Errorf("cannot join network namespace of a non running container: %s", orec.Name))
		}
		switch {
		case netMode(orec.HostConfig.NetworkMode) == "host":
			o.HostNetwork = true
		case s.cfg.Networks != nil:
			if sb, ok := s.cfg.Networks.Sandbox(orec.ID); ok {
				o.NetNSPath = sb.NetNS
			}
		}
		if o.NetNSPath == "" && !o.HostNetwork {
			o.NetNSPath = fmt.Sprintf("/proc/%d/ns/net", orec.State.Pid)
		}
		// The other container's name files are the truth for both, as in Docker.
		o.Hostname = orec.Config.Hostname
		for i, m := range o.Mounts {
			switch m.Destination {
			case "/etc/hosts":
				o.Mounts[i].Source = orec.HostsPath
			case "/etc/resolv.conf":
				o.Mounts[i].Source = orec.ResolvPath
			case "/etc/hostname":
				o.Mounts[i].Source = orec.HostnamePath
			}
		}
		return none, nil
	}
	if s.cfg.Networks == nil {
		return none, s.writeNetFiles(r, nil, false)
	}
	req := nw.SandboxRequest{ContainerID: r.ID, Name: r.Name, Hostname: r.Config.Hostname, DNS: hc.DNS}
	for _, name := range endpointOrder(r) {
		es := r.Networking.EndpointsConfig[name]
		er := nw.EndpointRequest{Network: name, MAC: es.MacAddress, Aliases: es.Aliases}
		if es.IPAMConfig != nil {
			er.IP = es.IPAMConfig.IPv4Address
		}
		if name == string(hc.NetworkMode) && er.MAC == "" {
			er.MAC = r.Config.MacAddress //nolint:staticcheck // older API clients set it here
		}
		req.Endpoints = append(req.Endpoints, er)
	}
	req.Ports = portRequests(r.Config.ExposedPorts, hc.PortBindings, hc.PublishAllPorts)
	sb, err := s.cfg.Networks.Setup(ctx, req)
	if err != nil {
		return none, err
	}
	td := func() {
		if err := s.cfg.Networks.Teardown(r.ID); err != nil {
			s.log.Warn("tearing down network", "id", r.ID, "err", err)
		}
	}
	o.NetNSPath = sb.NetNS
	if err := s.writeNetFiles(r, &sb, false); err != nil {
		td()
		return none, err
	}
	return td, nil
}

// endpointOrder lists a container's networks with the primary (NetworkMode) first, then by name, so the
// default route and eth0 are predictable.
func endpointOrder(r *record) []string {
	if r.Networking == nil {
		return nil
	}
	var names []string
	for name := range r.Networking.EndpointsConfig {
		if name != string(r.HostConfig.NetworkMode) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if _, ok := r.Networking.EndpointsConfig[string(r.HostConfig.NetworkMode)]; ok {
		names = append([]string{string(r.HostConfig.NetworkMode)}, names...)
	}
	return names
}

// portRequests turns PortBindings (and, with -P, every exposed port) into what to publish. A host port
// range asks for any port in it; Berth takes its first port.
func portRequests(exposed nat.PortSet, bindings nat.PortMap, all bool) []nw.PortRequest {
	var out []nw.PortRequest
	keys := make([]string, 0, len(bindings))
	for p := range bindings {
		keys = append(keys, string(p))
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := nat.Port(k)
		for _, b := range bindings[p] {
			hp := uint16(0)
			if b.HostPort != "" {
				lo, _, _ := nat.ParsePortRange(b.HostPort)
				hp = uint16(lo)
			}
			out = append(out, nw.PortRequest{Proto: p.Proto(), HostIP: b.HostIP, HostPort: hp, CtrPort: uint16(p.Int())})
		}
	}
	if all {
		var extra []string
		for p := range exposed {
			if _, ok := bindings[p]; !ok {
				extra = append(extra, string(p))
			}
		}
		sort.Strings(extra)
		for _, k := range extra {
			p := nat.Port(k)
			out = append(out, nw.PortRequest{Proto: p.Proto(), CtrPort: uint16(p.Int())})
		}
	}
	return out
}

// writeNetFiles writes the container's /etc/hosts and /etc/resolv.conf for the network it got.
func (s *Service) writeNetFiles(r *record, sb *nw.Sandbox, host bool) error {
	hc := r.HostConfig
	var hosts bytes.Buffer
	if host {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts.Write(b)
			if len(b) > 0 && b[len(b)-1] != '\n' {
				hosts.WriteByte('\n')
			}
		}
	} else {
		hosts.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	}
	for _, h := range hc.ExtraHosts {
		name, ip, _ := parseExtraHost(h)
		if ip == "host-gateway" {
			ip = s.hostGateway()
		}
		fmt.Fprintf(&hosts, "%s\t%s\n", ip, name)
	}
	for _, l := range hc.Links {
		if line := s.linkLine(l); line != "" {
			hosts.WriteString(line)
		}
	}
	if sb != nil {
		names := r.Config.Hostname
		if r.Config.Domainname != "" {
			names = r.Config.Hostname + "." + r.Config.Domainname + " " + r.Config.Hostname
		}
		for _, ep := range sb.Endpoints {
			fmt.Fprintf(&hosts, "%s\t%s\n", ep.IP, names)
		}
	}
	if err := os.WriteFile(r.HostsPath, hosts.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(r.ResolvPath, s.resolvConf(r, sb, host), 0o644)
}

func (s *Service) hostGateway() string {
	if s.cfg.Networks != nil {
		if gw := s.cfg.Networks.DefaultGateway(); gw.IsValid() {
			return gw.String()
		}
	}
	return "127.0.0.1"
}

// linkLine is the hosts entry of a legacy --link ("name:alias"): the linked container's address under
// the alias, its name and its short ID.
func (s *Service) linkLine(link string) string {
	name, alias, _ := strings.Cut(link, ":")
	name = strings.TrimPrefix(name, "/")
	alias = strings.TrimPrefix(alias, "/")
	if i := strings.LastIndex(alias, "/"); i >= 0 {
		alias = alias[i+1:] // the stored form is "/other:/me/alias"
	}
	if alias == "" {
		alias = name
	}
	c, err := s.get(name)
	if err != nil || s.cfg.Networks == nil {
		return ""
	}
	c.mu.Lock()
	id, cname := c.rec.ID, c.rec.Name
	c.mu.Unlock()
	sb, ok := s.cfg.Networks.Sandbox(id)
	if !ok || len(sb.Endpoints) == 0 {
		return ""
	}
	names := alias
	if alias != cname {
		names += " " + cname
	}
	return fmt.Sprintf("%s\t%s %s\n", sb.Endpoints[0].IP, names, id[:12])
}

// resolvConf builds the container's resolver configuration. On a user-defined network the embedded
// DNS server (the gateway) answers; elsewhere the container gets --dns or the host's resolvers, without
// loopback ones (they would point at the container itself), and Docker's public fallbacks if none is left.
func (s *Service) resolvConf(r *record, sb *nw.Sandbox, host bool) []byte {
	hc := r.HostConfig
	hostConf, _ := os.ReadFile("/etc/resolv.conf")
	var servers, search, options []string
	sc := bufio.NewScanner(bytes.NewReader(hostConf))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil && (host || !a.IsLoopback()) {
				servers = append(servers, f[1])
			}
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	if len(hc.DNS) > 0 {
		servers = hc.DNS
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(hc.DNSOptions) > 0 {
		options = hc.DNSOptions
	}
	if sb != nil && s.cfg.Networks != nil {
		for _, ep := range sb.Endpoints {
			if s.cfg.Networks.HasDNS(ep.NetworkID) {
				servers = []string{ep.Gateway.String()}
				if !ep.Gateway.IsValid() {
					// An internal network has no gateway to reach: its bridge address still answers.
					if n, err := s.cfg.Networks.Get(ep.NetworkID); err == nil {
						servers = []string{n.Gateway.String()}
					}
				}
				break
			}
		}
	}
	if len(servers) == 0 && !host {
		servers = []string{"8.8.8.8", "8.8.4.4"}
	}
	var b bytes.Buffer
	for _, ns := range servers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.Bytes()
}

// networkSettings is the NetworkSettings of inspect: the configured networks, with the live addresses
// of a running container.
func (s *Service) networkSettings(r *record) *container.NetworkSettings {
	ns := &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}}
	ns.Ports = nat.PortMap{}
	for p := range r.Config.ExposedPorts {
		ns.Ports[p] = nil
	}
	var sb nw.Sandbox
	var live bool
	if s.cfg.Networks != nil && r.State.Status == "running" {
		sb, live = s.cfg.Networks.Sandbox(r.ID)
	}
	if live {
		ns.SandboxKey = sb.NetNS
		ns.SandboxID = sb.ContainerID
		for _, p := range sb.Ports {
			key := nat.Port(fmt.Sprintf("%d/%s", p.CtrPort, p.Proto))
			hostIP := "0.0.0.0"
			if p.HostIP.IsValid() {
				hostIP = p.HostIP.String()
			}
			ns.Ports[key] = append(ns.Ports[key], nat.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(p.HostPort))})
		}
	}
	if r.Networking != nil {
		for name, es := range r.Networking.EndpointsConfig {
			e := &network.EndpointSettings{}
			if es != nil {
				e.IPAMConfig, e.Links, e.Aliases, e.NetworkID, e.MacAddress = es.IPAMConfig, es.Links, es.Aliases, es.NetworkID, es.MacAddress
			}
			if name == "host" || name == "none" {
				if s.cfg.Networks != nil {
					if n, err := s.cfg.Networks.Get(name); err == nil {
						e.NetworkID = n.ID
					}
				}
			}
			for _, ep := range sb.Endpoints {
				if ep.Network != name {
					continue
				}
				e.EndpointID, e.IPAddress, e.IPPrefixLen, e.MacAddress = ep.ID, ep.IP.String(), ep.Prefix, ep.MAC
				if ep.Gateway.IsValid() {
					e.Gateway = ep.Gateway.String()
				}
				e.DNSNames = append([]string{r.Name, r.ID[:12]}, ep.Aliases...)
				if name == "bridge" {
					ns.IPAddress, ns.IPPrefixLen, ns.Gateway, ns.MacAddress, ns.EndpointID = e.IPAddress, e.IPPrefixLen, e.Gateway, e.MacAddress, e.EndpointID //nolint:staticcheck // deprecated fields clients still read
				}
			}
			ns.Networks[name] = e
		}
	}
	return ns
}

// portsSummary is the Ports column of ps: published ports, and exposed ones that are not.
func (s *Service) portsSummary(r *record) []container.Port {
	out := []container.Port{}
	published := map[nat.Port]bool{}
	if s.cfg.Networks != nil && r.State.Status == "running" {
		if sb, ok := s.cfg.Networks.Sandbox(r.ID); ok {
			for _, p := range sb.Ports {
				ip := "0.0.0.0"
				if p.HostIP.IsValid() {
					ip = p.HostIP.String()
				}
				out = append(out, container.Port{IP: ip, PrivatePort: p.CtrPort, PublicPort: p.HostPort, Type: p.Proto})
				published[nat.Port(fmt.Sprintf("%d/%s", p.CtrPort, p.Proto))] = true
			}
		}
	}
	for p := range r.Config.ExposedPorts {
		if !published[p] {
			out = append(out, container.Port{PrivatePort: uint16(p.Int()), Type: p.Proto()})
		}
	}
	return out
}

// teardownNetwork releases a container's network once it no longer runs.
func (s *Service) teardownNetwork(id string) {
	if s.cfg.Networks == nil {
		return
	}
	if err := s.cfg.Networks.Teardown(id); err != nil {
		s.log.Warn("tearing down network", "id", id, "err", err)
	}
}

// containerAndNetwork finds both ends of a connect or disconnect, the container first as Docker does.
func (s *Service) containerAndNetwork(ref, netRef string) (*ctr, nw.Network, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, nw.Network{}, err
	}
	if s.cfg.Networks == nil {
		return nil, nw.Network{}, errdefs.NotImplemented(errors.New("networking is not available"))
	}
	n, err := s.cfg.Networks.Get(netRef)
	if err != nil {
		return nil, nw.Network{}, err
	}
	return c, n, nil
}

// ConnectNetwork adds a network to a container; a running container is attached at once.
func (s *Service) ConnectNetwork(ctx context.Context, ref, netRef string, es *network.EndpointSettings) error {
	c, n, err := s.containerAndNetwork(ref, netRef)
	if err != nil {
		return err
	}
	if n.Driver == nw.DriverOverlay {
		return errNotAttachable(n.Name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &c.rec
	switch mode := netMode(r.HostConfig.NetworkMode); {
	case mode == "host" || n.Driver == nw.DriverHost:
		return errdefs.Forbidden(errors.New("container cannot be disconnected from host network or connected to host network"))
	case mode == "none" || n.Driver == nw.DriverNull:
		return errdefs.Forbidden(errors.New("container cannot be connected to multiple networks with one of the networks in private (none) mode"))
	case mode == "container":
		return errdefs.Forbidden(errors.New("container sharing network namespace with another container or host cannot be connected to any other network"))
	}
	if r.Networking == nil {
		r.Networking = &network.NetworkingConfig{}
	}
	if r.Networking.EndpointsConfig == nil {
		r.Networking.EndpointsConfig = map[string]*network.EndpointSettings{}
	}
	if _, ok := r.Networking.EndpointsConfig[n.Name]; ok {
		return errdefs.Forbidden(fmt.Errorf("endpoint with name %s already exists in network %s", r.Name, n.Name))
	}
	if es == nil {
		es = &network.EndpointSettings{}
	}
	cp := *es
	cp.NetworkID = n.ID
	if r.State.Status == "running" {
		er := nw.EndpointRequest{Network: n.ID, MAC: cp.MacAddress, Aliases: cp.Aliases}
		if cp.IPAMConfig != nil {
			er.IP = cp.IPAMConfig.IPv4Address
		}
		if _, err := s.cfg.Networks.Connect(ctx, r.ID, er); err != nil {
			return err
		}
		if sb, ok := s.cfg.Networks.Sandbox(r.ID); ok {
			if err := s.writeNetFiles(r, &sb, false); err != nil {
				s.log.Warn("rewriting hosts after connect", "id", r.ID, "err", err)
			}
		}
	}
	r.Networking.EndpointsConfig[n.Name] = &cp
	return saveRecord(s.cfg.DB, r)
}

// DisconnectNetwork removes a network from a container, detaching a running one at once.
func (s *Service) DisconnectNetwork(ctx context.Context, ref, netRef string) error {
	c, n, err := s.containerAndNetwork(ref, netRef)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := &c.rec
	if n.Driver == nw.DriverHost || netMode(r.HostConfig.NetworkMode) == "host" {
		return errdefs.Forbidden(errors.New("container cannot be disconnected from host network or connected to host network"))
	}
	if r.Networking == nil || r.Networking.EndpointsConfig[n.Name] == nil {
		return errdefs.Forbidden(fmt.Errorf("container %s is not connected to network %s", r.ID[:12], n.Name))
	}
	if r.State.Status == "running" {
		if err := s.cfg.Networks.Disconnect(ctx, r.ID, n.ID); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		if sb, ok := s.cfg.Networks.Sandbox(r.ID); ok {
			if err := s.writeNetFiles(r, &sb, false); err != nil {
				s.log.Warn("rewriting hosts after disconnect", "id", r.ID, "err", err)
			}
		}
	}
	delete(r.Networking.EndpointsConfig, n.Name)
	return saveRecord(s.cfg.DB, r)
}

// NetworkUsers names the containers, running or not, configured to use network id.
func (s *Service) NetworkUsers(id string) []string {
	var out []string
	for _, c := range s.all() {
		c.mu.Lock()
		if c.rec.Networking != nil {
			for _, es := range c.rec.Networking.EndpointsConfig {
				if es != nil && es.NetworkID == id {
					out = append(out, c.rec.Name)
					break
				}
			}
		}
		c.mu.Unlock()
	}
	return out
}
