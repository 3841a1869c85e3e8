//go:build !cgo

package nsenter

// Available is false in a build without cgo: the constructor is missing and nothing can join a
// container's mount namespace.
const Available = false
