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
package linux
