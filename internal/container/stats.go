package container

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/docker/docker/api/types/container"
)

// statsInterval is how often a streaming stats request gets a sample, as in Docker.
const statsInterval = time.Second

// statsPreSample is how long a one-time (non-streaming) request waits between its two samples, so that
// the client can compute CPU % from the difference. Docker answers after a full collection cycle (a
// second or more); a tenth of a second still gives a meaningful percentage, as top's refresh does, and
// keeps `stats --no-stream` over many containers quick.
const statsPreSample = 100 * time.Millisecond

// Stats sends the container's resource usage in Docker's StatsResponse to emit: once, or every second
// while stream and ctx last. A one-time sample normally comes with the previous one (taken shortly
// before) that CPU % needs; oneShot skips that wait. A container that is not running reports zeros, as
// in Docker.
func (s *Service) Stats(ctx context.Context, ref string, stream, oneShot bool, emit func(*container.StatsResponse) error) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	var prev *container.StatsResponse
	if !stream && !oneShot {
		prev = s.sample(c)
		select {
		case <-time.After(statsPreSample):
		case <-ctx.Done():
			return nil
		}
	}
	for {
		cur := s.sample(c)
		if prev != nil {
			cur.PreRead = prev.Read
			cur.PreCPUStats = prev.CPUStats
		}
		if err := emit(cur); err != nil {
			return err
		}
		if !stream {
			return nil
		}
		prev = cur
		select {
		case <-time.After(statsInterval):
		case <-ctx.Done():
			return nil
		}
	}
}

// sample reads one stats sample of c.
func (s *Service) sample(c *ctr) *container.StatsResponse {
	c.mu.Lock()
	id, name, running := c.rec.ID, c.rec.Name, c.running()
	c.mu.Unlock()
	st := &container.StatsResponse{Name: "/" + name, ID: id, Read: time.Now().UTC()}
	if !running {
		// Docker's zero sample: times unset, so clients show 0 for everything.
		st.Read = time.Time{}
		return st
	}
	cg, err := cgroups.New(cgroupPath(id))
	if err != nil {
		return st
	}
	cs, err := cg.Stats()
	if err != nil {
		return st
	}
	st.PidsStats = container.PidsStats{Current: cs.PidsCurrent, Limit: cs.PidsLimit}
	st.CPUStats = container.CPUStats{
		CPUUsage: container.CPUUsage{
			TotalUsage:        cs.CPUUsageNs,
			UsageInKernelmode: cs.CPUSystemNs,
			UsageInUsermode:   cs.CPUUserNs,
		},
		SystemUsage: systemCPUUsage(),
		OnlineCPUs:  onlineCPUs(),
	}
	limit := cs.MemoryLimit
	if host := hostMemory(); host > 0 && (limit == 0 || limit > host) {
		limit = host
	}
	st.MemoryStats = container.MemoryStats{Usage: cs.MemoryUsage, MaxUsage: cs.MemoryMaxUsage, Limit: limit}
	// Clients subtract the page cache the kernel can drop; they look it up under the version's own key.
	if cgroups.Mode() == cgroups.Unified {
		st.MemoryStats.Stats = map[string]uint64{"inactive_file": cs.MemoryInactiveFile}
	} else {
		st.MemoryStats.Stats = map[string]uint64{"total_inactive_file": cs.MemoryInactiveFile}
	}
	st.BlkioStats = blkioStats(cg)
	return st
}

// blkioStats reads bytes and operations per device: blkio.throttle.* on v1 (the files that count
// every scheduler's I/O), io.stat on v2, in Docker's entry shape.
func blkioStats(cg cgroups.Manager) container.BlkioStats {
	var out container.BlkioStats
	if cgroups.Mode() == cgroups.Unified {
		f, err := os.Open(filepath.Join(cg.Path(""), "io.stat"))
		if err != nil {
			return out
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			major, minor, ok := parseDevice(fields[0])
			if !ok {
				continue
			}
			for _, kv := range fields[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					continue
				}
				e := container.BlkioStatEntry{Major: major, Minor: minor, Value: n}
				switch k {
				case "rbytes":
					e.Op = "read"
					out.IoServiceBytesRecursive = append(out.IoServiceBytesRecursive, e)
				case "wbytes":
					e.Op = "write"
					out.IoServiceBytesRecursive = append(out.IoServiceBytesRecursive, e)
				case "rios":
					e.Op = "read"
					out.IoServicedRecursive = append(out.IoServicedRecursive, e)
				case "wios":
					e.Op = "write"
					out.IoServicedRecursive = append(out.IoServicedRecursive, e)
				}
			}
		}
		return out
	}
	dir := cg.Path("blkio")
	if dir == "" {
		return out
	}
	out.IoServiceBytesRecursive = readBlkioV1(filepath.Join(dir, "blkio.throttle.io_service_bytes_recursive"), filepath.Join(dir, "blkio.throttle.io_service_bytes"))
	out.IoServicedRecursive = readBlkioV1(filepath.Join(dir, "blkio.throttle.io_serviced_recursive"), filepath.Join(dir, "blkio.throttle.io_serviced"))
	return out
}

// readBlkioV1 parses "8:0 Read 4096" lines from the first file that exists.
func readBlkioV1(paths ...string) []container.BlkioStatEntry {
	var out []container.BlkioStatEntry
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) != 3 {
				continue // the "Total" line
			}
			major, minor, ok := parseDevice(fields[0])
			n, err := strconv.ParseUint(fields[2], 10, 64)
			if !ok || err != nil {
				continue
			}
			out = append(out, container.BlkioStatEntry{Major: major, Minor: minor, Op: fields[1], Value: n})
		}
		f.Close()
		return out
	}
	return out
}

func parseDevice(s string) (major, minor uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	ma, err1 := strconv.ParseUint(a, 10, 64)
	mi, err2 := strconv.ParseUint(b, 10, 64)
	return ma, mi, err1 == nil && err2 == nil
}

// systemCPUUsage is the host's total CPU time in nanoseconds, from the first line of /proc/stat (user
// through steal, in USER_HZ ticks of 10 ms), which is what clients divide the container's usage by.
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[0] != "cpu" {
			continue
		}
		var ticks uint64
		for _, v := range fields[1:9] {
			n, _ := strconv.ParseUint(v, 10, 64)
			ticks += n
		}
		return ticks * 1e7
	}
	return 0
}

// onlineCPUs counts the "cpuN" lines of /proc/stat: the CPUs the kernel schedules on now.
func onlineCPUs() uint32 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	var n uint32
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "cpu") && len(line) > 3 && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	return n
}

// hostMemory is MemTotal from /proc/meminfo in bytes: the limit of a container without one.
func hostMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, _ := strconv.ParseUint(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
