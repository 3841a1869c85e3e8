//go:build tools

// Package crane pins go-containerregistry's crane so `go build` of it resolves from this go.mod.
package crane

import _ "github.com/google/go-containerregistry/cmd/crane"
