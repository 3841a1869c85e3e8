package orchestrator

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

// serviceName is what Docker accepts as a service name: it becomes a DNS name and part of container names.
var serviceName = regexp.MustCompile(`^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$`)

// ValidateSpec checks a service spec before it is stored, with the wording of Docker's swarm mode where
// users see it, so that a bad spec is refused whole and never half-applied.
func ValidateSpec(spec *swarm.ServiceSpec) error {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }

	if name := spec.Annotations.Name; name != "" && (len(name) > 63 || !serviceName.MatchString(name)) {
		bad("name must be valid as a DNS name component")
	}
	modes := 0
	for _, set := range []bool{spec.Mode.Replicated != nil, spec.Mode.Global != nil, spec.Mode.ReplicatedJob != nil, spec.Mode.GlobalJob != nil} {
		if set {
			modes++
		}
	}
	if modes > 1 {
		bad("only one of the service modes may be set")
	}
	if spec.Mode.ReplicatedJob != nil || spec.Mode.GlobalJob != nil {
		bad("job modes (replicated-job, global-job) are not supported")
	}

	t := spec.TaskTemplate
	switch {
	case t.ContainerSpec == nil && t.PluginSpec == nil && t.NetworkAttachmentSpec == nil:
		bad("ContainerSpec: missing in service spec")
	case t.PluginSpec != nil || t.NetworkAttachmentSpec != nil:
		bad("only container services are supported")
	case strings.TrimSpace(t.ContainerSpec.Image) == "":
		bad("ContainerSpec: image reference must be provided")
	}
	if t.ContainerSpec != nil {
		for _, m := range t.ContainerSpec.Mounts {
			switch m.Type {
			case mount.TypeBind, mount.TypeVolume, mount.TypeTmpfs:
			default:
				bad("invalid mount type: %q", m.Type)
			}
			if m.Target == "" || !strings.HasPrefix(m.Target, "/") {
				bad("invalid mount target, must be an absolute path: %s", m.Target)
			}
			if m.Type == mount.TypeBind && (m.Source == "" || !strings.HasPrefix(m.Source, "/")) {
				bad("invalid bind mount source, must be an absolute path: %s", m.Source)
			}
		}
	}
	if t.Placement != nil {
		if _, err := ParseConstraints(t.Placement.Constraints); err != nil {
			bad("%v", err)
		}
	}
	if rp := t.RestartPolicy; rp != nil {
		switch rp.Condition {
		case "", swarm.RestartPolicyConditionNone, swarm.RestartPolicyConditionOnFailure, swarm.RestartPolicyConditionAny:
		default:
			bad("invalid RestartCondition %q: expected none, on-failure or any", rp.Condition)
		}
		if rp.Delay != nil && *rp.Delay < 0 {
			bad("TaskSpec: restart-delay cannot be negative")
		}
		if rp.Window != nil && *rp.Window < 0 {
			bad("TaskSpec: restart-window cannot be negative")
		}
	}
	if r := t.Resources; r != nil {
		if r.Limits != nil && (r.Limits.NanoCPUs < 0 || r.Limits.MemoryBytes < 0 || r.Limits.Pids < 0) {
			bad("resource limits cannot be negative")
		}
		if r.Reservations != nil && (r.Reservations.NanoCPUs < 0 || r.Reservations.MemoryBytes < 0) {
			bad("resource reservations cannot be negative")
		}
		if r.Limits != nil && r.Reservations != nil && r.Limits.MemoryBytes > 0 && r.Reservations.MemoryBytes > r.Limits.MemoryBytes {
			bad("memory reservation %d is above the memory limit %d", r.Reservations.MemoryBytes, r.Limits.MemoryBytes)
		}
	}
	for which, u := range map[string]*swarm.UpdateConfig{"UpdateConfig": spec.UpdateConfig, "RollbackConfig": spec.RollbackConfig} {
		if u == nil {
			continue
		}
		switch u.FailureAction {
		case "", swarm.UpdateFailureActionPause, swarm.UpdateFailureActionContinue, swarm.UpdateFailureActionRollback:
		default:
			bad("%s: invalid FailureAction %q: expected pause, continue or rollback", which, u.FailureAction)
		}
		if which == "RollbackConfig" && u.FailureAction == swarm.UpdateFailureActionRollback {
			bad("RollbackConfig: FailureAction cannot be rollback")
		}
		switch u.Order {
		case "", swarm.UpdateOrderStopFirst, swarm.UpdateOrderStartFirst:
		default:
			bad("%s: invalid Order %q: expected stop-first or start-first", which, u.Order)
		}
		if u.Delay < 0 || u.Monitor < 0 {
			bad("%s: delay and monitor cannot be negative", which)
		}
		if u.MaxFailureRatio < 0 || u.MaxFailureRatio > 1 {
			bad("%s: max failure ratio must be between 0 and 1", which)
		}
	}
	if ep := spec.EndpointSpec; ep != nil {
		switch ep.Mode {
		case "", swarm.ResolutionModeVIP, swarm.ResolutionModeDNSRR:
		default:
			bad("EndpointSpec: invalid mode %q", ep.Mode)
		}
		seen := map[string]bool{}
		for _, p := range ep.Ports {
			switch p.Protocol {
			case "", swarm.PortConfigProtocolTCP, swarm.PortConfigProtocolUDP, swarm.PortConfigProtocolSCTP:
			default:
				bad("EndpointSpec: invalid protocol %q", p.Protocol)
			}
			switch p.PublishMode {
			case "", swarm.PortConfigPublishModeIngress, swarm.PortConfigPublishModeHost:
			default:
				bad("EndpointSpec: invalid publish mode %q", p.PublishMode)
			}
			if p.TargetPort == 0 || p.TargetPort > 65535 || p.PublishedPort > 65535 {
				bad("EndpointSpec: invalid port: target %d, published %d", p.TargetPort, p.PublishedPort)
			}
			if ep.Mode == swarm.ResolutionModeDNSRR && p.PublishMode != swarm.PortConfigPublishModeHost {
				bad("EndpointSpec: port published with ingress mode can't be used with dnsrr mode")
			}
			proto := string(p.Protocol)
			if proto == "" {
				proto = "tcp"
			}
			if p.PublishedPort != 0 {
				k := fmt.Sprintf("%d/%s", p.PublishedPort, proto)
				if seen[k] {
					bad("EndpointSpec: duplicate published ports provided: %s", k)
				}
				seen[k] = true
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// ValidateUpdate checks a change of spec for an existing service: on top of ValidateSpec, the mode
// cannot change.
func ValidateUpdate(old, spec *swarm.ServiceSpec) error {
	if err := ValidateSpec(spec); err != nil {
		return err
	}
	if (old.Mode.Global != nil) != (spec.Mode.Global != nil) {
		return errors.New("service mode change is not allowed")
	}
	return nil
}
