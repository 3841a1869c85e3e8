// Package executor runs the tasks a cluster assigns to this node as local containers, the way Docker's
// swarm agent does, and reports each task's status back.
//
// The caller (the cluster agent) hands Apply the full set of tasks assigned to this node every time it
// changes. For each task the executor keeps one runner that drives the task from its current state
// towards its desired state, one step at a time (step in state.go):
//
//	assigned → accepted → preparing → ready → starting → running → complete | failed
//	                         │                    │
//	                         └─ rejected          └─ failed (start error, unhealthy)
//	any state below complete, desired shutdown/remove → shutdown
//
// preparing pulls the image when it is missing and creates the container; starting starts it and, when
// the container has a healthcheck, waits until it is healthy; running waits for it to exit (or become
// unhealthy, which stops it and fails the task). A task whose desired state becomes shutdown has its
// container stopped with the spec's stop signal and grace period; a task that disappears from the
// assigned set (its service removed) has its container stopped the same way, then removed.
//
// Every step is idempotent, keyed by the container's name (<service>.<slot>.<taskID>, or
// <service>.<nodeID>.<taskID> for global services) and labels: preparing a task whose container already
// exists adopts it, starting one that has already run is a no-op. So a berthd restart loses nothing: the
// next Apply finds the task containers by label, resumes each task from the status the cluster last
// recorded, and removes the containers of tasks no longer assigned. Applying the same set twice does
// nothing.
//
// Restart policy belongs to the cluster (it replaces failed tasks): task containers run with none.
// Docker's service templates ({{.Task.Slot}}, {{.Node.Hostname}}, ...) in the hostname, env and mounts
// are expanded here, since only the node knows them. Networks go through a NetworkResolver: for now a
// task's networks are local networks by name (LocalNetworks); the overlay driver will resolve the task's
// NetworksAttachments there. Published ports in host mode are bound on this node (Assignment.Ports, as
// the Task type does not carry its service's endpoint) and reported in the task's PortStatus; ingress
// ports belong to the routing mesh.
//
// The executor only sees the local engine through the Containers and Images interfaces, so it works on
// Docker's swarm API types alone and knows nothing of how the cluster or the engine are built.
package executor
