// Package volume is Berth's volume service with Docker's local driver.
//
// A volume is a directory, <root>/<name>/_data, that containers bind-mount; its record (driver, labels,
// options, creation time) lives in the daemon's bbolt database, in one transaction per change, and the
// directory is made before the record is saved, so a crash leaves at worst an empty directory without a
// record (which the next create of that name reuses) and never a record without a directory.
//
// Lifecycle:
//   - Create makes a volume (idempotent for an existing name); containers make theirs with Acquire,
//     which creates a missing volume and counts the container as a user in one step, under the service's
//     lock, so a concurrent Remove cannot delete a volume a container is about to use.
//   - A volume is in use while any container, running or not, references it (Docker's rule). The
//     references live in memory and are rebuilt from the container records when berthd starts (Retain).
//   - Mount makes the volume's data available at its path for a starting container: a no-op for plain
//     volumes, a real mount (tmpfs, nfs, a bind of a host directory) for volumes created with the
//     type/device/o options; Unmount undoes it when the last running user is gone.
//   - Remove refuses a volume in use; Prune removes only unused ones.
//
// Data is never copied on the way in or out: a container's mount is a bind mount of _data, so reads and
// writes run at the host filesystem's speed.
package volume
