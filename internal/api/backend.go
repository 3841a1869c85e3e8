package api

import (
	"context"
	"io"
	"net"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/opencontainers/go-digest"
)

// ImportOptions says how an imported root filesystem becomes an image. It mirrors the image service's own
// options so that this package does not depend on the image package; the daemon adapts one to the other.
type ImportOptions struct {
	// Ref is the reference to tag the new image with ("" leaves it untagged).
	Ref string
	// Changes are Dockerfile instructions (CMD, ENV, ...) applied to the image config.
	Changes []string
	// Message is recorded in the image history.
	Message string
}

// ImageBackend is what the image routes need. Errors carry errdefs kinds; their messages reach users as is.
type ImageBackend interface {
	// Import reads a tar of a root filesystem from src (streamed, possibly large) and returns the image ID.
	Import(ctx context.Context, src io.Reader, opts ImportOptions) (digest.Digest, error)
	// Load reads a docker-save or OCI-layout archive, reporting user-facing lines ("Loaded image: x").
	Load(ctx context.Context, src io.Reader, progress func(line string)) error
	// Save writes one archive holding every image in refs.
	Save(ctx context.Context, refs []string, w io.Writer) error
	// Tag makes target refer to the image that source names.
	Tag(ctx context.Context, source, target string) error
	// Remove untags or deletes the image ref names.
	Remove(ctx context.Context, ref string, force, noPrune bool) ([]dimage.DeleteResponse, error)
	// List returns the images, all of them (intermediate ones too) when all is set.
	List(ctx context.Context, all bool, f filters.Args) ([]dimage.Summary, error)
	// History returns the layers' history of ref, newest first.
	History(ctx context.Context, ref string) ([]dimage.HistoryResponseItem, error)
	// Inspect describes the image ref names.
	Inspect(ctx context.Context, ref string) (*dimage.InspectResponse, error)
	// Prune deletes unused images matching f.
	Prune(ctx context.Context, f filters.Args) (dimage.PruneReport, error)
}

// AttachOptions are the query parameters of an attach request.
type AttachOptions struct {
	Stdin, Stdout, Stderr, Stream, Logs bool
	// DetachKeys overrides the key sequence that detaches from the container ("" keeps the default).
	DetachKeys string
}

// ContainerBackend is what the container routes need. Errors carry errdefs kinds; their messages reach users
// as is ("No such container: x").
type ContainerBackend interface {
	// Create makes a container; name may be empty.
	Create(ctx context.Context, name string, cfg *container.Config, host *container.HostConfig, net *network.NetworkingConfig) (container.CreateResponse, error)
	// Start starts a container; errdefs.NotModified when it already runs.
	Start(ctx context.Context, id string) error
	// Stop sends signal ("" for the container's stop signal), then SIGKILL after timeout seconds (nil: default).
	Stop(ctx context.Context, id string, signal string, timeout *int) error
	// Kill sends signal ("" for SIGKILL).
	Kill(ctx context.Context, id, signal string) error
	// Remove deletes a container; force kills it first when it runs.
	Remove(ctx context.Context, id string, force, removeVolumes bool) error
	// Wait registers the wait and returns at once; the result arrives on the channel. The server sends the
	// response header before it reads the channel, because clients call wait before start.
	Wait(ctx context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, error)
	// List returns containers (running ones unless all), at most limit of them when limit > 0.
	List(ctx context.Context, all bool, limit int, size bool, f filters.Args) ([]container.Summary, error)
	// Inspect describes a container.
	Inspect(ctx context.Context, id string) (*container.InspectResponse, error)
	// Rename gives a container a new name.
	Rename(ctx context.Context, id, newName string) error
	// Logs writes the container's log to w: stdcopy frames, or raw bytes for a TTY container. w flushes
	// every write to the client, so following logs stream as they come. It returns when ctx ends, or when
	// the log is written and opts.Follow is false.
	Logs(ctx context.Context, id string, opts container.LogsOptions, w io.Writer) error
	// Attach registers an attach session before the server answers the client (so a start that follows at
	// once misses no output) and returns the function that streams it. The server calls that function
	// after it has hijacked the connection and written the 101/200 response; it streams until the
	// container's output ends or the client goes away, and the server closes conn after. conn supports
	// CloseWrite when the transport does (unix and TCP sockets).
	Attach(ctx context.Context, id string, opts AttachOptions) (stream func(conn net.Conn) error, err error)
	// Resize sets the size of the container's TTY.
	Resize(ctx context.Context, id string, height, width uint) error
}

// SystemBackend is what the system routes need.
type SystemBackend interface {
	// Info describes the daemon and host for GET /info.
	Info(ctx context.Context) (*system.Info, error)
}
