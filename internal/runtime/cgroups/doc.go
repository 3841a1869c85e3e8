// Package cgroups places containers in control groups and sets their limits, with one Manager interface
// over both cgroup v1 (a hierarchy per controller) and cgroup v2 (one unified tree).
//
// A container's cgroup is named by an absolute path such as "/berth/<id>", taken from the root of every
// hierarchy (not from the caller's own cgroup), so that it can be found again after a daemon restart.
// Lifecycle: New → Create (mkdir + limits) → Apply(pid) → ... → Kill → Destroy. Destroy only removes the
// container's own directory; shared parents such as "/berth" are left for other containers.
package cgroups
