package monitor

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// reapLoop reaps orphans that were reparented to the monitor (it is a subreaper): processes that a
// container without its own pid namespace left behind, or a container whose runtime process died.
// Children that a Proc's Wait will reap are left alone.
func (s *Server) reapLoop(ctx context.Context) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, unix.SIGCHLD)
	defer signal.Stop(ch)
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-tick.C:
		}
		for !s.reapOrphans() {
			// A launch is forking: look again shortly rather than at the next SIGCHLD, which may not come.
			select {
			case <-ctx.Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// reapOrphans reaps zombie children nobody waits for; false means it could not look now.
func (s *Server) reapOrphans() bool {
	if !s.launchMu.TryLock() {
		return false
	}
	defer s.launchMu.Unlock()
	for _, pid := range children() {
		if _, ok := s.exempt.Load(pid); ok || !isZombie(pid) {
			continue
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			s.log.Debug("reaped orphan", "pid", pid)
		}
	}
	return true
}

// children lists the monitor's child processes (every thread's, since a child belongs to the thread that
// forked it, and an adopted orphan to whichever thread the kernel picked).
func children() []int {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	var pids []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The command name is in parentheses and may contain anything; the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}
