// Command berth is the Berth CLI: docker-compatible commands talking to berthd over the Engine API.
package main

import (
	"context"
	"os"

	"github.com/berth-dev/berth/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
}
