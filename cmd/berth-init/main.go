// berth-init is the small binary the monitor runs as every container's init and as the helper that
// enters a container for exec. berthd can play both parts itself, but it starts about twice as slowly
// (all of the daemon's packages initialise first), and a spare init or an exec helper starts on every
// container start and every exec. The monitor uses this binary when it sits next to berthd.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/runtime/linux"
)

func main() {
	// The exec helper never gets here: package linux's init runs it and exits.
	if filepath.Base(os.Args[0]) == linux.InitArg0 {
		linux.InitMain()
		return
	}
	fmt.Fprintln(os.Stderr, "berth-init is started by berthd's monitor, not by hand")
	os.Exit(2)
}
