package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

func replicated(name, image string, n uint64) swarm.ServiceSpec {
	return swarm.ServiceSpec{
		Annotations:  swarm.Annotations{Name: name, Labels: map[string]string{"tier": "front"}},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
	}
}

// TestServicesOneManager drives the service routes of a one-manager cluster without an executor: the
// leader's loop makes and places the tasks, which stay assigned as nothing runs them.
func TestServicesOneManager(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "solo")
	t.Cleanup(n.s.Close)
	if _, err := n.s.CreateService(ctx, replicated("web", "busybox", 1)); err != ErrNoSwarm {
		t.Fatalf("create outside a swarm: %v", err)
	}
	if _, err := n.s.Init(ctx, swarm.InitRequest{ListenAddr: n.addr, AdvertiseAddr: n.addr}); err != nil {
		t.Fatal(err)
	}
	bad := replicated("bad", "busybox", 1)
	bad.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.nope==1"}}
	if _, err := n.s.CreateService(ctx, bad); !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "unknown key") {
		t.Fatalf("bad constraint: %v", err)
	}
	id, err := n.s.CreateService(ctx, replicated("web", "busybox", 3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.s.CreateService(ctx, replicated("web", "busybox", 1)); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "name conflicts with an existing object") {
		t.Fatalf("duplicate name: %v", err)
	}
	waitFor(t, 5*time.Second, "3 tasks", func() bool {
		ts, _ := n.s.Tasks(ctx, filters.NewArgs(filters.Arg("service", "web"), filters.Arg("desired-state", "running")))
		return len(ts) == 3 && ts[0].NodeID != ""
	})
	ts, _ := n.s.Tasks(ctx, filters.NewArgs(filters.Arg("name", "web.2")))
	if len(ts) != 1 || ts[0].Slot != 2 || ts[0].Status.State != swarm.TaskStateAssigned {
		t.Fatalf("task web.2: %+v", ts)
	}
	if got, err := n.s.InspectTask(ctx, ts[0].ID[:10]); err != nil || got.ID != ts[0].ID {
		t.Fatalf("inspect task by prefix: %v", err)
	}
	list, _ := n.s.Services(ctx, filters.NewArgs(filters.Arg("label", "tier=front"), filters.Arg("mode", "replicated")), true)
	if len(list) != 1 || list[0].ID != id || list[0].ServiceStatus == nil || list[0].ServiceStatus.DesiredTasks != 3 || list[0].ServiceStatus.RunningTasks != 0 {
		t.Fatalf("services: %+v", list)
	}
	if _, err := n.s.Services(ctx, filters.NewArgs(filters.Arg("mode", "bogus")), false); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("bad mode filter: %v", err)
	}

	sv, _ := n.s.InspectService(ctx, id[:8])
	if err := n.s.UpdateService(ctx, "web", sv.Version.Index, sv.Spec, "previous"); !errdefs.IsInvalidParameter(err) || !strings.Contains(err.Error(), "does not have a previous spec") {
		t.Fatalf("rollback without a previous spec: %v", err)
	}
	spec := sv.Spec
	spec.TaskTemplate.ContainerSpec.Image = "busybox:2"
	if err := n.s.UpdateService(ctx, "web", sv.Version.Index-1, spec, ""); err == nil || !strings.Contains(err.Error(), "update out of sequence") {
		t.Fatalf("update at an old version: %v", err)
	}
	if err := n.s.UpdateService(ctx, "web", sv.Version.Index, spec, ""); err != nil {
		t.Fatal(err)
	}
	sv, _ = n.s.InspectService(ctx, "web")
	if sv.PreviousSpec == nil || sv.PreviousSpec.TaskTemplate.ContainerSpec.Image != "busybox" || sv.UpdateStatus == nil || sv.UpdateStatus.State != swarm.UpdateStateUpdating {
		t.Fatalf("after update: %+v %+v", sv.PreviousSpec, sv.UpdateStatus)
	}
	if err := n.s.RemoveService(ctx, "nope"); !errdefs.IsNotFound(err) || err.Error() != "service nope not found" {
		t.Fatalf("remove a missing service: %v", err)
	}
	if err := n.s.RemoveService(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "tasks of the removed service gone", func() bool {
		ts, _ := n.s.Tasks(ctx, filters.Args{})
		return len(ts) == 0
	})
}
