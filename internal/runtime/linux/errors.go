package linux

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Error kinds the init reports; the engine maps them as Docker does (exec failures are the user's
// mistake and give exit codes 126/127; anything else is the runtime's fault).
const (
	kindExec   = "exec"
	kindSystem = "system"
)

// initError is what the init writes to the error pipe before exiting.
type initError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// InitError is a failure of the container's init before its entrypoint ran.
type InitError struct {
	// Exec is true when the entrypoint itself could not be executed (not found, not executable).
	Exec    bool
	Message string
}

// Error returns the message in the wording Docker uses, e.g. `exec: "foo": executable file not found in $PATH`.
func (e *InitError) Error() string { return e.Message }

// ExitCode is the exit code Docker gives a container whose start failed this way: 127 for a command that
// does not exist, 126 for one that cannot be executed, 128 otherwise.
func (e *InitError) ExitCode() int {
	switch {
	case e.Exec && containsAny(e.Message, "executable file not found", "no such file or directory"):
		return 127
	case e.Exec:
		return 126
	}
	return 128
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// toError converts the init's report into the error Spawn returns.
func (ie initError) toError() error {
	e := &InitError{Exec: ie.Kind == kindExec, Message: ie.Message}
	if e.Exec {
		return errdefs.InvalidParameter(e)
	}
	return errdefs.System(e)
}

// reportAndExit is the init's last word on failure: the message goes to the error pipe, and the init
// exits without running anything of the container's.
func reportAndExit(errPipe *os.File, kind string, err error) {
	b, _ := json.Marshal(initError{Kind: kind, Message: err.Error()})
	if errPipe != nil {
		_, _ = errPipe.Write(b)
	} else {
		_, _ = os.Stderr.Write(append(b, '\n'))
	}
	os.Exit(1)
}
