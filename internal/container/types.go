package container

import (
	"context"
	"net"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Image is what the container service needs to know about an image.
type Image struct {
	ID      string // "sha256:..."
	ChainID string // top layer's chain ID; "" for an image without layers
	Config  dockerspec.DockerOCIImageConfig
}

// ImageResolver finds an image by name, tag or ID.
type ImageResolver interface {
	Resolve(ctx context.Context, ref string) (Image, error)
}

// RootfsManager gives each container a writable root filesystem on top of its image's layers.
type RootfsManager interface {
	// Prepare creates the container's writable layer over parent (a chain ID, or "").
	Prepare(ctx context.Context, id, parent string) error
	// Mount mounts the container's root filesystem at target.
	Mount(ctx context.Context, id, target string) error
	// Unmount undoes Mount; unmounting something not mounted is not an error.
	Unmount(target string) error
	// Remove deletes the writable layer; removing one that does not exist is not an error.
	Remove(ctx context.Context, id string) error
}

// Exit is a container process's end, as the monitor saw it.
type Exit struct {
	ID         string
	ExitCode   int
	OOMKilled  bool
	FinishedAt time.Time
}

// ProcState is the monitor's view of one container.
type ProcState struct {
	ID         string
	Pid        int
	Status     string // created, running, exited
	ExitCode   int
	OOMKilled  bool
	StartedAt  time.Time
	FinishedAt time.Time
}

// CreateRequest asks the monitor to get ready to run a container.
type CreateRequest struct {
	ID, Bundle, Runtime, LogPath string
	OpenStdin, StdinOnce, Tty    bool
	// Height and Width are the terminal's size before the process starts (HostConfig.ConsoleSize).
	Height, Width uint
}

// Monitor is the supervisor that runs containers outside berthd.
type Monitor interface {
	Create(ctx context.Context, req CreateRequest) error
	Start(ctx context.Context, id string) (pid int, err error)
	Kill(ctx context.Context, id string, sig int) error
	State(ctx context.Context, id string) (ProcState, error)
	List(ctx context.Context) ([]ProcState, error)
	Delete(ctx context.Context, id string) error
	Events(ctx context.Context) (<-chan Exit, error)
	Attach(ctx context.Context, id string, stdin, stdout, stderr bool) (*net.UnixConn, error)
}
