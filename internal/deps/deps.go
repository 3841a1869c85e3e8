// Package deps pins the modules Berth's packages use while they are being written in parallel, so that
// `go mod tidy` keeps them. Remove once every module is imported by real code.
package deps

import (
	_ "github.com/distribution/reference"
	_ "github.com/docker/docker/api"
	_ "github.com/docker/docker/api/types/container"
	_ "github.com/docker/docker/api/types/image"
	_ "github.com/docker/docker/client"
	_ "github.com/docker/docker/pkg/stdcopy"
	_ "github.com/docker/go-units"
	_ "github.com/moby/docker-image-spec/specs-go/v1"
	_ "github.com/moby/sys/capability"
	_ "github.com/moby/term"
	_ "github.com/opencontainers/go-digest"
	_ "github.com/opencontainers/image-spec/specs-go/v1"
	_ "github.com/opencontainers/runtime-spec/specs-go"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/sys/unix"
)
