// Package orchestrator is the cluster's desired-state loop, as pure functions: from the services, the
// nodes and the tasks that exist, Reconcile works out which tasks to create, which to stop and where
// each one runs. The leader runs it after every change to the store and commits the Plan it returns in
// one transaction; workers run what they are assigned (internal/cluster/executor) and report back, which
// changes the store again. It holds no state of its own between passes: everything it needs (restart
// delays, rolling-update batches, failure counts) is read from the tasks' statuses and timestamps, so a
// new leader picks up exactly where the old one stopped.
//
// The rules follow Docker's swarm mode: replicated services keep one running task per slot, global
// services one per eligible node; a task that ends is replaced according to the restart policy; the
// scheduler places tasks on ready, active nodes that satisfy the placement constraints and have the
// reserved resources free, spreading a service's tasks over the nodes; a drained or lost node's tasks are
// replaced elsewhere; a changed task template rolls out in batches (parallelism, delay, order,
// failure action with monitor window and failure ratio), and rolls back on request or on failure.
package orchestrator
