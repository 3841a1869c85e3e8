// Package monitor is the one supervisor process that keeps every container's process, stdio, logs and exit
// status alive while berthd restarts or crashes.
//
// berthd re-executes itself as "berth-monitor" (Main) in its own session with its output in
// <exec-root>/monitor.log, so a daemon crash or upgrade never touches it; Ensure does that when no monitor
// answers. The monitor is a child subreaper and the parent (directly, or through an OCI runtime's
// foreground process) of every container's init: it waits on them, copies their stdout and stderr into the
// json-file log (package logs) and to attached clients, and reports exits. Per container it costs a few
// goroutines, six pipe fds while running, and two 32 KiB copy buffers; there is no per-container process.
//
// Lifecycle of a container, driven by the daemon through a Client:
//
//	create  register, make stdio pipes, listen on <exec-root>/containers/<id>/attach.sock
//	start   copiers run first (nothing is lost), then the Launcher starts the process
//	exit    output drained and the log closed, then state "exited" and one event to every subscriber
//	start   again: new pipes and process; the log is appended to
//	delete  forget it and remove its directory (refused while running)
//
// Control protocol on <exec-root>/monitor.sock (0600): one JSON request line per connection
// ({"op":"start","id":"..."}), answered by one JSON line ({"pid":123,...} or {"error":"...","kind":"..."}).
// "events" keeps the connection open and sends one Exit per line after a first "{}" line that says the
// subscription is in place. An exit with no subscriber connected is not lost: the container stays "exited"
// and the daemon learns it from "list" when it reconnects.
//
// Attach protocol on a container's attach.sock: the client sends one JSON line
// {"stdin":bool,"stdout":bool,"stderr":bool}, the monitor answers one JSON line ("{}" or {"error":...}),
// then sends output in Docker's stdcopy framing (stream byte 1 or 2, three zero bytes, big-endian uint32
// length) and copies what the client sends to the container's stdin. A client's half-close ends stdin when
// the container was created with stdinOnce. An attach made while the container is not running waits for
// the next start, so `start -a` sees the first byte. After the process exits and its output is drained the
// monitor flushes and closes every attach connection. A client that does not read loses output beyond a
// bounded buffer; it never slows the container or its log.
//
// TTY: a container created with Tty gets a devpts instance of its own, mounted by the monitor at
// <exec-root>/containers/<id>/pts from create to delete and bound over the bundle's /dev/pts at each start,
// so the terminal the monitor holds is the container's /dev/pts/0 and its controlling terminal. Its output
// is one stream, logged as stdout and sent to attach clients raw (no stdcopy frames); client input goes to
// the master. "resize" {id, execId?, height, width} sets a terminal's size (TIOCSWINSZ).
//
// Exec: "exec" {exec: {id, execId, process, tty, openStdin, attach?}} starts an OCI process in a running
// container through the Execer (Berth's runtime: linux.Exec joins the init's namespaces, root and
// cgroup). The process is the monitor's child, so its exit code is real. With attach set, the control
// connection itself becomes the exec's stream: the answer line {"exec": {pid...}}, then its output (framed,
// or raw with a TTY, whose terminal comes from the container's /dev/pts), with input going the other way;
// the monitor closes it once the process has exited and its output is sent, the exit already recorded
// ("execState" returns it). Without attach the output is discarded. Exits of execs are not events: the
// container's exit stream stays the container's.
//
// Crash guarantees: containers run in their own session and are never signalled when the monitor dies, and
// the monitor survives berthd. What a restarted monitor needs (id, bundle, log path, pid) is written to
// <exec-root>/containers/<id>/monitor.json; re-adopting running containers after a monitor restart is not
// implemented yet (a container whose monitor died keeps running, but its stdout/stderr have no reader).
package monitor
