package cluster

import (
	"net/netip"
	"testing"

	"github.com/docker/docker/api/types/swarm"
)

func TestFreeSubnet(t *testing.T) {
	taken := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("10.0.2.0/23")}
	got, err := freeSubnet([]string{"10.0.0.0/8"}, 24, taken)
	if err != nil || got.String() != "10.0.1.0/24" {
		t.Fatalf("got %s, %v", got, err)
	}
	taken = append(taken, got)
	if got, _ = freeSubnet([]string{"10.0.0.0/8"}, 24, taken); got.String() != "10.0.4.0/24" {
		t.Fatalf("after 10.0.3.0/24 is inside a taken /23: got %s", got)
	}
	if _, err := freeSubnet([]string{"192.168.0.0/24"}, 24, []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}); err == nil {
		t.Fatal("an exhausted pool gave a subnet")
	}
}

// The allocator hands out each address once, keeps those in use (VIPs, live tasks, nodes), frees
// those of ended tasks, and picks published ports from Docker's range.
func TestAllocator(t *testing.T) {
	mk := func(id, subnet string, ingress bool) networkObject {
		p := netip.MustParsePrefix(subnet)
		n := networkObject{Network: swarm.Network{ID: id, Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: id}, Ingress: ingress},
			IPAMOptions: &swarm.IPAMOptions{Configs: []swarm.IPAMConfig{{Subnet: subnet, Gateway: p.Addr().Next().String()}}}}}
		return n
	}
	ingress, app := mk("ing", "10.0.0.0/29", true), mk("app", "10.0.1.0/24", false)
	sv := swarm.Service{ID: "s1", Spec: swarm.ServiceSpec{
		TaskTemplate: swarm.TaskSpec{Networks: []swarm.NetworkAttachmentConfig{{Target: "app"}}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{TargetPort: 80}}},
	}}
	sv.Endpoint = endpoint(sv.Spec, swarm.Endpoint{}, nil)
	live := swarm.Task{ServiceID: "s1", Status: swarm.TaskStatus{State: swarm.TaskStateRunning},
		NetworksAttachments: []swarm.NetworkAttachment{{Network: swarm.Network{ID: "app"}, Addresses: []string{"10.0.1.2/24"}}}}
	ended := swarm.Task{ServiceID: "s1", Status: swarm.TaskStatus{State: swarm.TaskStateFailed},
		NetworksAttachments: []swarm.NetworkAttachment{{Network: swarm.Network{ID: "app"}, Addresses: []string{"10.0.1.3/24"}}}}
	a := newAllocator([]networkObject{ingress, app}, []swarm.Service{sv}, []swarm.Task{live, ended})
	changed, err := a.service(&sv)
	if err != nil || !changed {
		t.Fatalf("service: %v %v", changed, err)
	}
	if len(sv.Endpoint.VirtualIPs) != 2 || sv.Endpoint.VirtualIPs[0].Addr != "10.0.1.3/24" || sv.Endpoint.VirtualIPs[1].Addr != "10.0.0.2/29" {
		t.Fatalf("VIPs: %+v", sv.Endpoint.VirtualIPs)
	}
	if p := sv.Endpoint.Ports[0]; p.PublishedPort != firstDynamicPort || p.PublishMode != swarm.PortConfigPublishModeIngress {
		t.Fatalf("port: %+v", p)
	}
	if changed, _ := a.service(&sv); changed {
		t.Fatal("a second pass changed an allocated service")
	}
	var nt swarm.Task
	if err := a.task(&nt, sv); err != nil || len(nt.NetworksAttachments) != 2 || nt.NetworksAttachments[0].Addresses[0] != "10.0.1.4/24" {
		t.Fatalf("task: %+v %v", nt.NetworksAttachments, err)
	}
	// The /29 ingress has 5 usable addresses besides the gateway: VIP, the task, then three nodes.
	nodes := []swarm.Node{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}}
	if err := a.nodes(nodes); err != nil || len(a.ingress.obj.NodeIPs) != 3 || !a.ingress.changed {
		t.Fatalf("nodes: %v %v", a.ingress.obj.NodeIPs, err)
	}
	if err := a.nodes(append(nodes, swarm.Node{ID: "n4"})); err == nil {
		t.Fatal("a full ingress network gave a node an address")
	}
	a.ingress.changed = false
	if err := a.nodes(nodes[:1]); err != nil || len(a.ingress.obj.NodeIPs) != 1 || !a.ingress.changed {
		t.Fatalf("removed nodes keep addresses: %v %v", a.ingress.obj.NodeIPs, err)
	}
	if len(a.changes()) != 1 {
		t.Fatalf("changes: %v", a.changes())
	}
}
