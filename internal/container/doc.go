// Package container is the container service: it owns every container's record and state machine
// (created → running → exited, and removal), and drives the pieces a container needs through narrow
// interfaces: an image resolver, a rootfs manager (snapshots), a spec builder and the monitor that
// supervises running processes.
//
// State and crash guarantees:
//   - A container's record is written to the metadata database in one transaction at create; until then
//     nothing the create made (snapshot, directory) is reachable, and a failed create removes them.
//   - The monitor, not berthd, is the parent of every running container. berthd learns exits from the
//     monitor's event stream, and after a restart from the monitor's list, so an exit that happened while
//     berthd was down is recorded with its real exit code.
//   - A container the monitor no longer knows (monitor or host restarted) is marked exited with code 255,
//     as Docker does when it loses a container.
package container
