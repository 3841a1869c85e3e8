// Package archive turns layer tars into directories and directories into layer tars.
//
// Apply extracts a layer confined to its destination: every parent directory is resolved with openat2
// and RESOLVE_IN_ROOT, so neither ".." in a name nor a symlink planted by the same (or an earlier) layer
// can make a write land outside the destination, and final components are created with O_EXCL/O_NOFOLLOW
// after removing whatever was there. OCI whiteouts are either converted to overlayfs form (for a layer
// unpacked straight into an overlay upper directory) or applied by deleting (for a copied tree).
//
// WriteTar and Diff go the other way, deterministically: entries in lexical order, no user or group
// names, no access or change times, mtimes in whole seconds, so identical trees give identical digests.
package archive
