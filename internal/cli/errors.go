package cli

import (
	"errors"
	"fmt"
	"strings"
)

// StatusError carries the exit code a command wants, with the message to print (if any). Commands return
// it instead of calling os.Exit so that tests can run them in-process and deferred cleanups still run.
type StatusError struct {
	Status     string
	StatusCode int
}

// Error lets a StatusError travel as an error; Run prints Status, not this text.
func (e *StatusError) Error() string {
	return fmt.Sprintf("Status: %s, Code: %d", e.Status, e.StatusCode)
}

// exitStatus is a StatusError with no message: the container's exit code passing through berth run/start.
func exitStatus(code int) error { return &StatusError{StatusCode: code} }

// runStartError classifies a failure to start a container the way docker does, so scripts can tell
// "command not found" (127) and "not executable" (126) from engine errors (125).
func runStartError(err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"),
		strings.Contains(msg, "system cannot find the file specified"):
		code = 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		code = 126
	}
	return &StatusError{Status: "berth: " + msg + "\n\nRun 'berth run --help' for more information", StatusCode: code}
}

// errCancelled is returned when a user declines a confirmation prompt; it exits 0 silently, as docker's
// prune does.
var errCancelled = errors.New("cancelled")
