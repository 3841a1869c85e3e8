package executor

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
)

func TestContainerName(t *testing.T) {
	if got := ContainerName("web", swarm.Task{ID: "t1", Slot: 3, NodeID: "n1"}); got != "web.3.t1" {
		t.Errorf("replicated: %s", got)
	}
	if got := ContainerName("agent", swarm.Task{ID: "t2", NodeID: "n1"}); got != "agent.n1.t2" {
		t.Errorf("global: %s", got)
	}
}

func TestBuildSpec(t *testing.T) {
	grace := 2500 * time.Millisecond
	init := true
	a := Assignment{
		ServiceName: "web",
		Ports: []swarm.PortConfig{
			{TargetPort: 80, PublishedPort: 8080, PublishMode: swarm.PortConfigPublishModeHost, Protocol: swarm.PortConfigProtocolTCP},
			{TargetPort: 53, PublishMode: swarm.PortConfigPublishModeHost, Protocol: swarm.PortConfigProtocolUDP},
			{TargetPort: 443, PublishedPort: 443, PublishMode: swarm.PortConfigPublishModeIngress},
		},
		Task: swarm.Task{
			ID: "task1", ServiceID: "svc1", Slot: 2,
			Spec: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{
					Image: "busybox", Command: []string{"sh", "-c"}, Args: []string{"sleep 1"},
					Env: []string{"A=1"}, Dir: "/tmp", User: "1000", Hostname: "h",
					Labels:          map[string]string{"x": "y", LabelTaskID: "spoofed"},
					Mounts:          []mount.Mount{{Type: mount.TypeTmpfs, Target: "/scratch"}},
					StopSignal:      "SIGUSR1",
					StopGracePeriod: &grace, Init: &init, ReadOnly: true,
					Hosts:      []string{"10.0.0.1 db database"},
					Privileges: &swarm.Privileges{NoNewPrivileges: true, Seccomp: &swarm.SeccompOpts{Mode: swarm.SeccompModeUnconfined}},
				},
				Resources: &swarm.ResourceRequirements{Limits: &swarm.Limit{NanoCPUs: 5e8, MemoryBytes: 64 << 20, Pids: 50}},
				Networks:  []swarm.NetworkAttachmentConfig{{Target: "backend", Aliases: []string{"api"}}},
			},
		},
	}
	s, err := buildSpec(a, nodeInfo{ID: "node1", Hostname: "host1"}, LocalNetworks{})
	if err != nil {
		t.Fatal(err)
	}
	c, h := s.config, s.hostConfig
	if s.name != "web.2.task1" {
		t.Errorf("name %s", s.name)
	}
	wantLabels := map[string]string{"x": "y", LabelTaskID: "task1", LabelTaskName: "web.2.task1", LabelNodeID: "node1",
		LabelServiceID: "svc1", LabelServiceName: "web", LabelTask: ""}
	for k, v := range wantLabels {
		if got, ok := c.Labels[k]; !ok || got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if strings.Join(c.Entrypoint, " ") != "sh -c" || strings.Join(c.Cmd, " ") != "sleep 1" || c.WorkingDir != "/tmp" || c.User != "1000" || c.Hostname != "h" {
		t.Errorf("process: %+v", c)
	}
	if c.StopSignal != "SIGUSR1" || c.StopTimeout == nil || *c.StopTimeout != 3 {
		t.Errorf("stop: %q %v", c.StopSignal, c.StopTimeout)
	}
	if h.NanoCPUs != 5e8 || h.Memory != 64<<20 || h.PidsLimit == nil || *h.PidsLimit != 50 {
		t.Errorf("limits: %d %d %v", h.NanoCPUs, h.Memory, h.PidsLimit)
	}
	if h.RestartPolicy.Name != container.RestartPolicyDisabled || !h.ReadonlyRootfs || h.Init == nil || !*h.Init {
		t.Errorf("host config: %+v", h)
	}
	if strings.Join(h.SecurityOpt, ",") != "no-new-privileges,seccomp=unconfined" {
		t.Errorf("security options %v", h.SecurityOpt)
	}
	if len(h.Mounts) != 1 || h.Mounts[0].Target != "/scratch" {
		t.Errorf("mounts %+v", h.Mounts)
	}
	if strings.Join(h.ExtraHosts, ",") != "db:10.0.0.1,database:10.0.0.1" {
		t.Errorf("extra hosts %v", h.ExtraHosts)
	}
	if len(h.PortBindings) != 2 || h.PortBindings["80/tcp"][0].HostPort != "8080" || h.PortBindings["53/udp"][0].HostPort != "" {
		t.Errorf("port bindings %v (ingress ports are not bound here)", h.PortBindings)
	}
	if h.NetworkMode != "backend" || s.networking.EndpointsConfig["backend"].Aliases[0] != "api" {
		t.Errorf("network %q %+v", h.NetworkMode, s.networking)
	}
}

func TestBuildSpecDefaults(t *testing.T) {
	a := Assignment{ServiceName: "agent", Task: swarm.Task{ID: "t", Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox"}}}}
	s, err := buildSpec(a, nodeInfo{ID: "node9"}, LocalNetworks{})
	if err != nil {
		t.Fatal(err)
	}
	if s.name != "agent.node9.t" || s.config.Labels[LabelNodeID] != "node9" {
		t.Errorf("global task on this node: %s %v", s.name, s.config.Labels)
	}
	if *s.config.StopTimeout != 10 || s.hostConfig.NetworkMode != "" || s.networking != nil {
		t.Errorf("defaults: %v %q %v", *s.config.StopTimeout, s.hostConfig.NetworkMode, s.networking)
	}
}

func TestValidate(t *testing.T) {
	for _, a := range []Assignment{
		{ServiceName: "s", Task: swarm.Task{ID: "t"}},
		{ServiceName: "s", Task: swarm.Task{ID: "t", Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{}}}},
		{Task: swarm.Task{ID: "t", Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "x"}}}},
		{ServiceName: "s", Task: swarm.Task{ID: "t", Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "x",
			Secrets: []*swarm.SecretReference{{SecretName: "pw"}}}}}},
	} {
		if validate(a) == nil {
			t.Errorf("%+v: want an error", a)
		}
	}
}

func TestTemplates(t *testing.T) {
	a := Assignment{ServiceName: "web", ServiceLabels: map[string]string{"team": "blue"}, Task: swarm.Task{
		ID: "task1", ServiceID: "svc1", Slot: 4, NodeID: "node1",
		Spec: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox",
			Hostname: "{{.Node.Hostname}}-{{.Task.Slot}}",
			Env:      []string{"TASK={{.Task.Name}}", "SVC={{.Service.Name}}/{{.Service.ID}}", "TEAM={{index .Service.Labels \"team\"}}", "PLAIN=x"},
			Mounts:   []mount.Mount{{Type: mount.TypeVolume, Source: "data-{{.Task.Slot}}", Target: "/d/{{.Node.ID}}"}},
		}}}}
	s, err := buildSpec(a, nodeInfo{ID: "node1", Hostname: "host1"}, LocalNetworks{})
	if err != nil {
		t.Fatal(err)
	}
	if s.config.Hostname != "host1-4" {
		t.Errorf("hostname %q", s.config.Hostname)
	}
	if got := strings.Join(s.config.Env, " "); got != "TASK=web.4.task1 SVC=web/svc1 TEAM=blue PLAIN=x" {
		t.Errorf("env %q", got)
	}
	if m := s.hostConfig.Mounts[0]; m.Source != "data-4" || m.Target != "/d/node1" {
		t.Errorf("mount %+v", m)
	}
	if a.Task.Spec.ContainerSpec.Hostname != "{{.Node.Hostname}}-{{.Task.Slot}}" {
		t.Errorf("the task's own spec was changed")
	}
	a.Task.Spec.ContainerSpec.Env = []string{"BAD={{.Nope}}"}
	if _, err := buildSpec(a, nodeInfo{ID: "node1"}, LocalNetworks{}); err == nil || !strings.Contains(err.Error(), "expanding env failed") {
		t.Errorf("bad template: %v", err)
	}
}
