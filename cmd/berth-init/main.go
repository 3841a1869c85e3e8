// berth-init is the small binary the monitor runs as every container's init and as the helper that
// enters a container for exec. Bind-mounted into a container as /sbin/docker-init, it is the minimal
// init of `run --init`. berthd can play both parts itself, but it starts about twice as slowly
// (all of the daemon's packages initialise first), and a spare init or an exec helper starts on every
// container start and every exec. The monitor uses this binary when it sits next to berthd.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/runtime/linux"
	"github.com/berth-dev/berth/internal/runtime/reaper"
)

func main() {
	// The exec helper never gets here: package linux's init runs it and exits.
	switch filepath.Base(os.Args[0]) {
	case linux.InitArg0:
		linux.InitMain()
		return
	case filepath.Base(reaper.Path):
		reaper.Main(os.Args[1:])
		return
	}
	fmt.Fprintln(os.Stderr, "berth-init is started by berthd's monitor, not by hand")
	os.Exit(2)
}
