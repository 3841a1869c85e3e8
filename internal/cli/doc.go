// Package cli implements the `berth` command line: docker-compatible commands, flags, output formats and
// exit codes, talking to berthd (or any Docker Engine) over the Engine API with the Docker Go SDK.
//
// Users script against docker's behaviour, so the contract here is docker's: table columns and spacing,
// "Error response from daemon: ..." on stderr, exit 125 when `run`/`create` fail before the container
// runs, 126/127 when its command cannot be executed, and otherwise the container's own exit code.
package cli
