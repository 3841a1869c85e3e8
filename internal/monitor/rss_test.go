package monitor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func vmRSSKiB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// TestRSSPerContainer measures what one more running container costs the monitor process. It is a
// measurement, not an assertion of a budget: run with BERTH_MONITOR_RSS=1 and -v.
func TestRSSPerContainer(t *testing.T) {
	if os.Getenv("BERTH_MONITOR_RSS") == "" {
		t.Skip("set BERTH_MONITOR_RSS=1 to measure")
	}
	root := shortTempDir(t)
	t.Cleanup(func() { killMonitors(root) })
	ctx := context.Background()
	c, err := Ensure(ctx, root, monitorCmd(root))
	if err != nil {
		t.Fatal(err)
	}
	mon := monitorPids(t, root)[0]
	run := func(i int) {
		id := fmt.Sprintf("c%d", i)
		if err := c.Create(ctx, CreateOptions{ID: id, Bundle: "echo started; exec sleep 60", LogPath: filepath.Join(root, id+".log")}); err != nil {
			t.Fatal(err)
		}
		pid, err := c.Start(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stopProcess(pid) })
	}
	const n = 100
	run(0)
	time.Sleep(200 * time.Millisecond)
	before := vmRSSKiB(t, mon)
	for i := 1; i <= n; i++ {
		run(i)
	}
	time.Sleep(500 * time.Millisecond)
	after := vmRSSKiB(t, mon)
	t.Logf("monitor RSS %d KiB with 1 container, %d KiB with %d: %.1f KiB per running container", before, after, n+1, float64(after-before)/n)
	for i := 0; i <= n; i++ {
		c.Kill(ctx, fmt.Sprintf("c%d", i), syscall.SIGKILL)
	}
}
