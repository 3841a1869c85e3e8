package orchestrator

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

func TestValidateSpec(t *testing.T) {
	one := uint64(1)
	neg := -time.Second
	good := func() swarm.ServiceSpec {
		return swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "nginx"}},
			Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &one}}}
	}
	s := good()
	if err := ValidateSpec(&s); err != nil {
		t.Fatalf("good spec: %v", err)
	}
	cases := map[string]func(*swarm.ServiceSpec){
		"name must be valid as a DNS name component": func(s *swarm.ServiceSpec) { s.Name = "web_1" },
		"image reference must be provided":           func(s *swarm.ServiceSpec) { s.TaskTemplate.ContainerSpec.Image = "" },
		"only one of the service modes":              func(s *swarm.ServiceSpec) { s.Mode.Global = &swarm.GlobalService{} },
		"unknown key": func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"zone==a"}}
		},
		"invalid RestartCondition":         func(s *swarm.ServiceSpec) { s.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: "always"} },
		"restart-delay cannot be negative": func(s *swarm.ServiceSpec) { s.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Delay: &neg} },
		"invalid FailureAction":            func(s *swarm.ServiceSpec) { s.UpdateConfig = &swarm.UpdateConfig{FailureAction: "explode"} },
		"FailureAction cannot be rollback": func(s *swarm.ServiceSpec) { s.RollbackConfig = &swarm.UpdateConfig{FailureAction: "rollback"} },
		"invalid Order":                    func(s *swarm.ServiceSpec) { s.UpdateConfig = &swarm.UpdateConfig{Order: "random"} },
		"max failure ratio":                func(s *swarm.ServiceSpec) { s.UpdateConfig = &swarm.UpdateConfig{MaxFailureRatio: 2} },
		"duplicate published ports provided: 80/tcp": func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 80}, {TargetPort: 81, PublishedPort: 80}}}
		},
		"invalid publish mode": func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80, PublishMode: "mesh"}}}
		},
		"invalid mount target": func(s *swarm.ServiceSpec) {
			s.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeVolume, Target: "data"}}
		},
		"memory reservation": func(s *swarm.ServiceSpec) {
			s.TaskTemplate.Resources = &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: 1 << 20}, Reservations: &swarm.Resources{MemoryBytes: 2 << 20}}
		},
		"port published with ingress mode can't be used with dnsrr": func(s *swarm.ServiceSpec) {
			s.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR, Ports: []swarm.PortConfig{{TargetPort: 80, PublishedPort: 8080}}}
		},
		"job modes": func(s *swarm.ServiceSpec) {
			s.Mode = swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}
		},
	}
	for want, mutate := range cases {
		s := good()
		mutate(&s)
		err := ValidateSpec(&s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	old, upd := good(), good()
	upd.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
	if err := ValidateUpdate(&old, &upd); err == nil || !strings.Contains(err.Error(), "service mode change is not allowed") {
		t.Errorf("mode change: %v", err)
	}
}
