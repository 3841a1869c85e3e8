package monitor

import (
	"errors"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Container statuses, as State.Status reports them.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusExited  = "exited"
)

// CreateOptions registers a container with the monitor.
type CreateOptions struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	// Runtime picks the Launcher: "" or "berth" for Berth's builtin runtime, anything else is the path
	// (or $PATH name) of an OCI runtime binary run through RuncLauncher.
	Runtime string `json:"runtime,omitempty"`
	// LogPath is the json-file log; empty for none.
	LogPath string `json:"logPath,omitempty"`
	// OpenStdin gives the container a stdin pipe fed by attach clients; otherwise stdin is /dev/null.
	OpenStdin bool `json:"openStdin,omitempty"`
	// StdinOnce closes the container's stdin when the first attached client closes its side.
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// Tty gives the container a terminal: the monitor mounts a devpts instance for it, binds it as the
	// container's /dev/pts, and holds the master; output is one raw stream, logged as stdout.
	Tty bool `json:"tty,omitempty"`
	// Height and Width are a TTY's initial size (Docker's HostConfig.ConsoleSize), applied to every run's
	// terminal before the process starts; 0 leaves the kernel's default until a resize.
	Height uint16 `json:"consoleHeight,omitempty"`
	Width  uint16 `json:"consoleWidth,omitempty"`
}

// State is what the monitor knows about one container.
type State struct {
	ID         string    `json:"id"`
	Pid        int       `json:"pid"`
	Status     string    `json:"status"`
	ExitCode   int       `json:"exitCode"`
	Signal     int       `json:"signal"`
	OOMKilled  bool      `json:"oomKilled"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// Exit is the event sent to subscribers when a container's process has exited and its output is drained
// into the log.
type Exit struct {
	ID         string    `json:"id"`
	ExitCode   int       `json:"exitCode"`
	Signal     int       `json:"signal"`
	OOMKilled  bool      `json:"oomKilled"`
	FinishedAt time.Time `json:"finishedAt"`
}

// AttachOptions is the first line a client sends on a container's attach socket.
type AttachOptions struct {
	Stdin  bool `json:"stdin"`
	Stdout bool `json:"stdout"`
	Stderr bool `json:"stderr"`
}

// Operations of the control protocol.
const (
	opCreate = "create"
	opStart  = "start"
	opKill   = "kill"
	opState  = "state"
	opList   = "list"
	opDelete = "delete"
	opEvents = "events"
	opPing   = "ping"

	opExec      = "exec"
	opExecState = "execState"
	opResize    = "resize"
)

type request struct {
	Op string `json:"op"`
	CreateOptions
	Signal int `json:"signal,omitempty"`
	// Exec is the process of an "exec".
	Exec *ExecOptions `json:"exec,omitempty"`
	// ExecID names an exec for "execState" and "resize" (empty: the container itself).
	ExecID string `json:"execId,omitempty"`
	// Height and Width are a "resize"'s terminal size.
	Height uint16 `json:"height,omitempty"`
	Width  uint16 `json:"width,omitempty"`
}

type response struct {
	Error string `json:"error,omitempty"`
	// Kind carries the errdefs kind across the socket so berthd's API maps it to the right status.
	Kind string `json:"kind,omitempty"`
	*State
	Containers []State    `json:"containers,omitempty"`
	Exec       *ExecState `json:"exec,omitempty"`
}

var kindNames = map[errdefs.Kind]string{
	errdefs.KindNotFound:         "notfound",
	errdefs.KindConflict:         "conflict",
	errdefs.KindInvalidParameter: "invalid",
	errdefs.KindNotModified:      "notmodified",
	errdefs.KindUnavailable:      "unavailable",
}

func errorResponse(err error) response {
	return response{Error: err.Error(), Kind: kindNames[errdefs.KindOf(err)]}
}

// responseError turns an error response back into an error of the same kind and text.
func responseError(r response) error {
	err := errors.New(r.Error)
	for k, name := range kindNames {
		if name == r.Kind {
			switch k {
			case errdefs.KindNotFound:
				return errdefs.NotFound(err)
			case errdefs.KindConflict:
				return errdefs.Conflict(err)
			case errdefs.KindInvalidParameter:
				return errdefs.InvalidParameter(err)
			case errdefs.KindNotModified:
				return errdefs.NotModified(err)
			case errdefs.KindUnavailable:
				return errdefs.Unavailable(err)
			}
		}
	}
	return err
}
