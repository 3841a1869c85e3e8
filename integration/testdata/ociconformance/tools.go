//go:build tools

// Package ociconformance pins the conformance suite so `go build` of it resolves from this go.mod.
package ociconformance

import _ "github.com/opencontainers/distribution-spec/conformance"
