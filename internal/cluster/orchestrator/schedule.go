package orchestrator

import (
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/swarm"
)

// load is what already runs (or is on its way) on a node.
type load struct {
	tasks     int
	byService map[string]int
	cpu, mem  int64 // reserved
}

// schedule places every task that has no node yet, on the eligible node with the fewest tasks of its
// service, then the fewest tasks in all; a task no node can take stays pending with the reasons.
func (p *pass) schedule() {
	loads := map[string]*load{}
	for _, id := range p.nodeIDs {
		loads[id] = &load{byService: map[string]int{}}
	}
	ids := append(append([]string(nil), p.order...), p.created...)
	count := func(t *swarm.Task) {
		l := loads[t.NodeID]
		if l == nil || !live(t) || ended(t.Status.State) {
			return
		}
		l.tasks++
		l.byService[t.ServiceID]++
		if r := t.Spec.Resources; r != nil && r.Reservations != nil {
			l.cpu += r.Reservations.NanoCPUs
			l.mem += r.Reservations.MemoryBytes
		}
	}
	var pending []*swarm.Task
	for _, id := range ids {
		t := p.tasks[id]
		if p.deleted[id] {
			continue
		}
		if t.NodeID != "" {
			count(t)
			continue
		}
		if live(t) && !ended(t.Status.State) {
			pending = append(pending, t)
		}
	}
	for _, t := range pending {
		var best string
		var constraintsFail, resourcesFail, maxFail int
		for _, id := range p.nodeIDs {
			n := p.nodes[id]
			ok, cf := eligible(n, t.Spec)
			if !ok {
				if cf {
					constraintsFail++
				}
				continue
			}
			l := loads[id]
			if !fits(n, l, t.Spec) {
				resourcesFail++
				continue
			}
			if t.Spec.Placement != nil && t.Spec.Placement.MaxReplicas > 0 && uint64(l.byService[t.ServiceID]) >= t.Spec.Placement.MaxReplicas {
				maxFail++
				continue
			}
			if best == "" || better(l, loads[best], t.ServiceID) {
				best = id
			}
		}
		if best == "" {
			msg := noSuitableNode(constraintsFail, resourcesFail, maxFail)
			if t.Status.State != swarm.TaskStatePending || t.Status.Err != msg {
				t.Status = swarm.TaskStatus{Timestamp: p.o.Now, State: swarm.TaskStatePending, Message: "pending task scheduling", Err: msg}
				p.touch(t)
			}
			continue
		}
		t.NodeID = best
		t.Status = swarm.TaskStatus{Timestamp: p.o.Now, State: swarm.TaskStateAssigned, Message: "scheduler assigned task to node"}
		p.touch(t)
		count(t)
	}
}

func better(a, b *load, svc string) bool {
	if a.byService[svc] != b.byService[svc] {
		return a.byService[svc] < b.byService[svc]
	}
	return a.tasks < b.tasks
}

// fits reports whether the node has the task's reservations free. A node that reports no resources
// takes any reservation, as nothing can be checked.
func fits(n *swarm.Node, l *load, spec swarm.TaskSpec) bool {
	if spec.Resources == nil || spec.Resources.Reservations == nil {
		return true
	}
	r := spec.Resources.Reservations
	have := n.Description.Resources
	if r.NanoCPUs > 0 && have.NanoCPUs > 0 && l.cpu+r.NanoCPUs > have.NanoCPUs {
		return false
	}
	if r.MemoryBytes > 0 && have.MemoryBytes > 0 && l.mem+r.MemoryBytes > have.MemoryBytes {
		return false
	}
	return true
}

// noSuitableNode is Docker's message for a task no node can take.
func noSuitableNode(constraints, resources, maxReplicas int) string {
	var why []string
	plural := func(n int) string {
		if n == 1 {
			return "1 node"
		}
		return fmt.Sprintf("%d nodes", n)
	}
	if constraints > 0 {
		why = append(why, "scheduling constraints not satisfied on "+plural(constraints))
	}
	if resources > 0 {
		why = append(why, "insufficient resources on "+plural(resources))
	}
	if maxReplicas > 0 {
		why = append(why, "max replicas per node limit exceed")
	}
	if len(why) == 0 {
		return "no suitable node"
	}
	return "no suitable node (" + strings.Join(why, "; ") + ")"
}
