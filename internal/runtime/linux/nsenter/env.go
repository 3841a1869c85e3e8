// Package nsenter joins a running container's namespaces before the Go runtime starts.
//
// setns(2) into a mount namespace is refused to a multi-threaded process, and the Go runtime starts
// threads before any Go code runs, so this step is C: a constructor (nsenter.c) that runs before the
// runtime in every start of a binary that links this package. It does nothing unless EnvPid is set.
// When it is:
//
//  1. It opens /proc/<pid>/ns/{cgroup,ipc,uts,net,pid,mnt} and /proc/<pid>/root of the target (the
//     container's init), skipping namespaces it already shares.
//  2. It setns's into each, then chroots to the container's root.
//  3. It forks, because the pid namespace only applies to children. The parent writes "P<child pid>\n"
//     to the fd named by EnvPipe and exits 0; the child closes that fd, clears both variables and lets
//     Go start, now inside the container. Any failure writes "E<step>: <error>\n" and exits 1.
//
// The forked child is reparented to the nearest child subreaper, so the process that started the
// helper must be one (the monitor is) to wait for it and read its real exit status.
//
// Building with this package needs cgo; the binaries stay static with
// `-tags netgo,osusergo -ldflags '-extldflags -static'`.
package nsenter

// Environment variables the constructor reads.
const (
	// EnvPid is the pid (in the caller's pid namespace) of a process whose namespaces to join.
	EnvPid = "_BERTH_NSENTER_PID"
	// EnvPipe is the fd number the constructor reports the child's pid, or its failure, on.
	EnvPipe = "_BERTH_NSENTER_PIPE"
)
