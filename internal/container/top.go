package container

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/docker/docker/api/types/container"
)

// Top lists a running container's processes the way the host's `ps psArgs` (default "-ef") shows them,
// keeping the rows whose PID is in the container's cgroup. The host's ps is used, as in Docker, so that
// every ps option works; pids are the host's.
func (s *Service) Top(ctx context.Context, ref, psArgs string) (container.TopResponse, error) {
	var resp container.TopResponse
	c, err := s.get(ref)
	if err != nil {
		return resp, err
	}
	c.mu.Lock()
	id, running, status := c.rec.ID, c.running(), c.rec.State.Status
	c.mu.Unlock()
	if status == "restarting" {
		return resp, errRestarting(id)
	}
	if !running {
		return resp, errdefs.Conflict(fmt.Errorf("Container %s is not running", id))
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	cg, err := cgroups.New(cgroupPath(id))
	if err != nil {
		return resp, errdefs.System(err)
	}
	pids, err := cg.Procs()
	if err != nil {
		return resp, errdefs.System(fmt.Errorf("reading the container's processes: %w", err))
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return resp, errdefs.InvalidParameter(fmt.Errorf("ps: %s: %s", strings.TrimSpace(stderr.String()), err))
	}
	resp, err = parsePS(out, pids)
	if err != nil {
		return resp, errdefs.InvalidParameter(err)
	}
	s.event("top", id, nil)
	return resp, nil
}

// parsePS keeps the rows of ps output whose PID column is in pids. The last column (the command) may
// hold spaces, so a row is split into as many fields as there are titles.
func parsePS(out []byte, pids []int) (container.TopResponse, error) {
	resp := container.TopResponse{Processes: [][]string{}}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	resp.Titles = strings.Fields(lines[0])
	pidCol := -1
	for i, t := range resp.Titles {
		if t == "PID" {
			pidCol = i
			break
		}
	}
	if pidCol < 0 {
		return resp, fmt.Errorf("Couldn't find PID field in ps output")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	n := len(resp.Titles)
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= pidCol {
			continue
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil {
			return resp, fmt.Errorf("Unexpected pid '%s': %s", f[pidCol], err)
		}
		if !want[pid] {
			continue
		}
		if len(f) > n {
			f = append(f[:n-1], strings.Join(f[n-1:], " "))
		}
		resp.Processes = append(resp.Processes, f)
	}
	return resp, nil
}
