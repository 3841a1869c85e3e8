package executor

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/go-connections/nat"
)

// Docker's labels on a task's container; the executor finds its containers again by them.
const (
	LabelServiceID   = "com.docker.swarm.service.id"
	LabelServiceName = "com.docker.swarm.service.name"
	LabelTaskID      = "com.docker.swarm.task.id"
	LabelTaskName    = "com.docker.swarm.task.name"
	LabelNodeID      = "com.docker.swarm.node.id"
	// LabelTask marks every task container (Docker sets it, empty).
	LabelTask = "com.docker.swarm.task"
)

// defaultGracePeriod is Docker's stop grace period when the spec gives none.
const defaultGracePeriod = 10 * time.Second

// ContainerName is the name of a task's container: <service>.<slot>.<taskID>, with the node's ID for the
// slot of a global service's task (slot 0).
func ContainerName(serviceName string, t swarm.Task) string {
	slot := strconv.Itoa(t.Slot)
	if t.Slot == 0 {
		slot = t.NodeID
	}
	return serviceName + "." + slot + "." + t.ID
}

// containerSpec is what creating a task's container takes.
type containerSpec struct {
	name       string
	config     *container.Config
	hostConfig *container.HostConfig
	networking *network.NetworkingConfig
}

// validate says why an assignment cannot run at all (the task is rejected, or Apply refuses it).
func validate(a Assignment) error {
	t := a.Task
	if t.ID == "" {
		return errors.New("task has no ID")
	}
	if a.ServiceName == "" {
		return fmt.Errorf("task %s: service name is empty", t.ID)
	}
	if t.Spec.ContainerSpec == nil {
		return fmt.Errorf("task %s: only container tasks are supported (no ContainerSpec)", t.ID)
	}
	cs := t.Spec.ContainerSpec
	if cs.Image == "" {
		return fmt.Errorf("task %s: no image specified", t.ID)
	}
	// Better refused than run without the files the service expects.
	if len(cs.Secrets) > 0 || len(cs.Configs) > 0 {
		return fmt.Errorf("task %s: secrets and configs are not supported on this node yet", t.ID)
	}
	return nil
}

// gracePeriod is how long a task's container gets to stop before it is killed.
func gracePeriod(cs *swarm.ContainerSpec) time.Duration {
	if cs.StopGracePeriod != nil && *cs.StopGracePeriod >= 0 {
		return *cs.StopGracePeriod
	}
	return defaultGracePeriod
}

// graceSeconds rounds a grace period up to the whole seconds the engine's stop takes.
func graceSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

// buildSpec turns an assignment into the container that runs it, as Docker's swarm agent does.
func buildSpec(a Assignment, node nodeInfo, nets NetworkResolver) (containerSpec, error) {
	t := a.Task
	if t.NodeID == "" {
		t.NodeID = node.ID
	}
	a.Task = t
	name := ContainerName(a.ServiceName, t)
	cs, err := expandContainerSpec(t.Spec.ContainerSpec, newTemplateContext(a, node.Hostname))
	if err != nil {
		return containerSpec{}, err
	}

	labels := map[string]string{}
	for k, v := range cs.Labels {
		labels[k] = v
	}
	// The task's own labels are Docker's and win over the spec's.
	labels[LabelTask] = ""
	labels[LabelTaskID] = t.ID
	labels[LabelTaskName] = name
	labels[LabelNodeID] = t.NodeID
	labels[LabelServiceID] = t.ServiceID
	labels[LabelServiceName] = a.ServiceName

	grace := graceSeconds(gracePeriod(cs))
	cfg := &container.Config{
		Image:       cs.Image,
		Entrypoint:  cs.Command,
		Cmd:         cs.Args,
		Env:         cs.Env,
		WorkingDir:  cs.Dir,
		User:        cs.User,
		Hostname:    cs.Hostname,
		Labels:      labels,
		Healthcheck: cs.Healthcheck,
		StopSignal:  cs.StopSignal,
		StopTimeout: &grace,
		Tty:         cs.TTY,
		OpenStdin:   cs.OpenStdin,
	}
	hc := &container.HostConfig{
		Mounts:         cs.Mounts,
		Init:           cs.Init,
		ReadonlyRootfs: cs.ReadOnly,
		CapAdd:         cs.CapabilityAdd,
		CapDrop:        cs.CapabilityDrop,
		Sysctls:        cs.Sysctls,
		GroupAdd:       cs.Groups,
		OomScoreAdj:    int(cs.OomScoreAdj),
		// The cluster replaces failed tasks; the engine must not restart them behind its back.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
	}
	for _, u := range cs.Ulimits {
		if u != nil {
			hc.Ulimits = append(hc.Ulimits, u)
		}
	}
	// Swarm's hosts entries are "IP host [aliases...]"; the engine's ExtraHosts are "host:IP".
	for _, h := range cs.Hosts {
		f := strings.Fields(h)
		if len(f) < 2 {
			return containerSpec{}, fmt.Errorf("invalid hosts entry %q: expected \"IP hostname [aliases...]\"", h)
		}
		for _, n := range f[1:] {
			hc.ExtraHosts = append(hc.ExtraHosts, n+":"+f[0])
		}
	}
	if d := cs.DNSConfig; d != nil {
		hc.DNS, hc.DNSSearch, hc.DNSOptions = d.Nameservers, d.Search, d.Options
	}
	if p := cs.Privileges; p != nil {
		if p.NoNewPrivileges {
			hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges")
		}
		if sc := p.Seccomp; sc != nil {
			switch sc.Mode {
			case swarm.SeccompModeUnconfined:
				hc.SecurityOpt = append(hc.SecurityOpt, "seccomp=unconfined")
			case swarm.SeccompModeCustom:
				hc.SecurityOpt = append(hc.SecurityOpt, "seccomp="+string(sc.Profile))
			}
		}
	}
	if ld := t.Spec.LogDriver; ld != nil {
		hc.LogConfig = container.LogConfig{Type: ld.Name, Config: ld.Options}
	}
	if r := t.Spec.Resources; r != nil && r.Limits != nil {
		hc.NanoCPUs = r.Limits.NanoCPUs
		hc.Memory = r.Limits.MemoryBytes
		if r.Limits.Pids > 0 {
			p := r.Limits.Pids
			hc.PidsLimit = &p
		}
	}

	// Published ports: host mode binds on this node now; ingress belongs to the routing mesh.
	for _, p := range a.Ports {
		if p.PublishMode != swarm.PortConfigPublishModeHost || p.TargetPort == 0 {
			continue
		}
		proto := string(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		port, err := nat.NewPort(proto, strconv.Itoa(int(p.TargetPort)))
		if err != nil {
			return containerSpec{}, fmt.Errorf("invalid published port %d/%s: %w", p.TargetPort, proto, err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = nat.PortSet{}
			hc.PortBindings = nat.PortMap{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		host := ""
		if p.PublishedPort != 0 {
			host = strconv.Itoa(int(p.PublishedPort))
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], nat.PortBinding{HostPort: host})
	}

	mode, nc, err := nets.Resolve(t)
	if err != nil {
		return containerSpec{}, err
	}
	hc.NetworkMode = container.NetworkMode(mode)
	return containerSpec{name: name, config: cfg, hostConfig: hc, networking: nc}, nil
}

// nodeInfo is what a task's container may learn about the node it runs on (through templates).
type nodeInfo struct {
	ID, Hostname string
}

// NetworkResolver chooses the networks a task's container joins. The overlay driver will plug in here:
// it gets the whole task, including the NetworksAttachments the cluster allocated (network, addresses).
type NetworkResolver interface {
	// Resolve returns the container's network mode (its first network, "" for the default bridge) and
	// the endpoints to create on it and on any further networks.
	Resolve(t swarm.Task) (mode string, nc *network.NetworkingConfig, err error)
}

// LocalNetworks is the resolver used until overlay networks exist: each of the task spec's networks
// names a network of this engine (by name or ID), joined with the spec's aliases; a task with none
// joins the default bridge.
type LocalNetworks struct{}

// Resolve implements NetworkResolver. A task with addresses on overlay networks (NetworksAttachments,
// allocated by the cluster) joins each of them at its address, and the default bridge first: as Docker's
// tasks reach the world through docker_gwbridge, ours do through the bridge, which also gives them their
// default route (an overlay endpoint only routes its own subnet).
func (LocalNetworks) Resolve(t swarm.Task) (string, *network.NetworkingConfig, error) {
	if len(t.NetworksAttachments) > 0 {
		return overlayEndpoints(t)
	}
	if len(t.Spec.Networks) == 0 {
		return "", nil, nil
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	for _, n := range t.Spec.Networks {
		if n.Target == "" {
			return "", nil, errors.New("network attachment has no target network")
		}
		nc.EndpointsConfig[n.Target] = &network.EndpointSettings{Aliases: n.Aliases, DriverOpts: n.DriverOpts}
	}
	return t.Spec.Networks[0].Target, nc, nil
}

func overlayEndpoints(t swarm.Task) (string, *network.NetworkingConfig, error) {
	aliases := map[string][]string{}
	for _, n := range t.Spec.Networks {
		aliases[n.Target] = n.Aliases
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"bridge": {}}}
	for _, at := range t.NetworksAttachments {
		if at.Network.ID == "" || len(at.Addresses) == 0 {
			return "", nil, fmt.Errorf("network attachment without a network or an address: %+v", at)
		}
		ip, _, ok := strings.Cut(at.Addresses[0], "/")
		if !ok {
			return "", nil, fmt.Errorf("network %s: invalid address %q", at.Network.Spec.Name, at.Addresses[0])
		}
		nc.EndpointsConfig[at.Network.ID] = &network.EndpointSettings{
			IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip},
			Aliases:    aliases[at.Network.ID],
		}
	}
	return "bridge", nc, nil
}
