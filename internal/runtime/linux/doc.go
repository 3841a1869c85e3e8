// Package linux is Berth's own OCI runtime: it runs a bundle's config.json with no runc or containerd.
//
// Spawn re-executes this binary with argv[0] = InitArg0, in new namespaces, as a direct child of the
// caller (no double fork, so the caller can wait for it). Two pipes join them:
//
//   - the sync pipe (init's fd 3): the init blocks reading it while Spawn puts it in its cgroup; Spawn then
//     writes the spec as JSON and closes it, which releases the init.
//   - the error pipe (init's fd 4, close-on-exec): the init writes a JSON initError if any step before
//     execve fails. A successful execve closes the pipe, so Spawn reading EOF with no message means the
//     container's entrypoint is running.
//
// In between, InitMain sets up the container from inside: cgroup namespace, mounts, pivot_root, masked
// and read-only paths, hostname, rlimits, then credentials, capabilities and execve on the main thread.
// Per-thread state (credentials, capabilities, namespaces joined with setns) is why all of that runs on
// the one locked OS thread that finally calls execve.
//
// A Pool saves most of a start's time (the init's exec, Go runtime start and package inits) by keeping
// one init started ahead, a spare (spare.go): booted at idle CPU priority, in fresh pid, uts and ipc
// namespaces, holding only /dev/null as 0-2 and a socket to the pool, killed by the kernel if the pool's
// thread dies. A start with the default namespace set hands it the stdio and both pipes over the socket
// (SCM_RIGHTS, dup2'ed onto 0-4), after which the parent's half of Spawn runs unchanged: cgroup, spec,
// error pipe. The spare unshares its mount namespace only then, so it sees the rootfs mounted since it
// started, and its network namespace too (or joins one by path, or keeps the host's). Other namespace
// sets, or no spare ready, take the cold path.
//
// Process.Wait returns once the exit status and OOM state are known; the cgroup is emptied and removed
// in the background (a v1 rmdir can stay busy for milliseconds), and a new start with the same cgroup
// path waits for that removal first.
package linux
