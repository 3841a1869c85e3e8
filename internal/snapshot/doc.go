// Package snapshot gives each image layer and each container a directory tree, stacked with overlayfs
// (or, where overlayfs cannot be mounted, copied).
//
// Lifecycle, as in containerd: Prepare(key, parent) makes an *active* snapshot whose mounts show the
// parent's files and take writes; Commit(name, key) freezes it into a *committed* snapshot named (for
// image layers) by the layer's chain ID, which can then be the parent of further Prepares; Remove
// deletes a snapshot that nothing is built on. Layers are unpacked once and shared by every image and
// container above them.
//
// State lives in the caller's bbolt database, bucket "snapshots": key -> record {id, kind, parent}.
// Data lives under <root>/<id>/fs (and <root>/<id>/work for overlay), with short numeric ids so that
// overlay's lowerdir option (limited to one page) holds many layers. Crash guarantees: a record is
// written only after its directory is complete, and a directory is deleted only after its record is
// gone, so a crash leaves at most an unreferenced directory, which the next New* removes.
package snapshot
