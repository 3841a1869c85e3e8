package container

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/docker/docker/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cfsPeriod is the CFS period --cpus is expressed against, as in Docker.
const cfsPeriod = 100000

// Update changes a container's resource limits and restart policy. The new values are validated with
// the same rules as create, written to a running container's cgroup, and persisted in its HostConfig so
// the next start uses them too. Fields left zero keep their value.
func (s *Service) Update(ctx context.Context, ref string, u container.UpdateConfig) (container.UpdateResponse, error) {
	resp := container.UpdateResponse{Warnings: []string{}}
	c, err := s.get(ref)
	if err != nil {
		return resp, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.rec.ID
	if st := c.rec.State.Status; st == "removing" || st == "dead" {
		return resp, errdefs.Conflict(fmt.Errorf("container is marked for removal and cannot be \"update\""))
	}
	hc := *c.rec.HostConfig
	old := hc.Resources
	r := &hc.Resources
	in := u.Resources
	if in.Memory != 0 {
		if in.MemorySwap == 0 && old.MemorySwap > 0 && in.Memory > old.MemorySwap {
			return resp, errdefs.InvalidParameter(errors.New("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"))
		}
		r.Memory = in.Memory
	}
	if in.MemorySwap != 0 {
		r.MemorySwap = in.MemorySwap
	}
	if in.MemoryReservation != 0 {
		r.MemoryReservation = in.MemoryReservation
	}
	if in.NanoCPUs != 0 {
		r.NanoCPUs = in.NanoCPUs
	}
	if in.CPUShares != 0 {
		r.CPUShares = in.CPUShares
	}
	if in.CPUPeriod != 0 {
		r.CPUPeriod = in.CPUPeriod
	}
	if in.CPUQuota != 0 {
		r.CPUQuota = in.CPUQuota
	}
	if in.CpusetCpus != "" {
		r.CpusetCpus = in.CpusetCpus
	}
	if in.CpusetMems != "" {
		r.CpusetMems = in.CpusetMems
	}
	if in.PidsLimit != nil {
		p := *in.PidsLimit
		r.PidsLimit = &p
	}
	if in.BlkioWeight != 0 {
		if in.BlkioWeight < 10 || in.BlkioWeight > 1000 {
			return resp, errdefs.InvalidParameter(errors.New("Range of blkio weight is from 10 to 1000"))
		}
		r.BlkioWeight = in.BlkioWeight
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return resp, errdefs.InvalidParameter(errors.New("Restart policy cannot be updated because AutoRemove is enabled for the container"))
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	if err := validateHostConfig(&hc); err != nil {
		return resp, err
	}
	if c.running() {
		cg, err := cgroups.New(cgroupPath(id))
		if err != nil {
			return resp, errdefs.System(err)
		}
		if err := cg.Update(linuxResources(in, *r)); err != nil {
			return resp, errdefs.System(fmt.Errorf("Cannot update container %s: %w", id, err))
		}
	}
	c.rec.HostConfig = &hc
	if err := saveRecord(s.cfg.DB, &c.rec); err != nil {
		return resp, errdefs.System(err)
	}
	s.event("update", id, nil)
	return resp, nil
}

// linuxResources is what an update writes to the cgroup: only the limits the request changed (in),
// in the runtime's terms, taking unchanged companions (memory with swap) from the merged result (all).
func linuxResources(in, all container.Resources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if in.Memory != 0 || in.MemorySwap != 0 {
		mem := &specs.LinuxMemory{}
		if all.Memory > 0 {
			m := all.Memory
			mem.Limit = &m
		}
		var sw int64
		switch {
		case all.MemorySwap != 0:
			sw = all.MemorySwap
		case all.Memory > 0:
			sw = 2 * all.Memory // Docker's default: as much swap as memory
		}
		if sw != 0 {
			mem.Swap = &sw
		}
		out.Memory = mem
	}
	cpu := &specs.LinuxCPU{}
	useCPU := false
	if in.NanoCPUs != 0 {
		period := uint64(cfsPeriod)
		quota := in.NanoCPUs * cfsPeriod / 1e9
		cpu.Period, cpu.Quota, useCPU = &period, &quota, true
	}
	if in.CPUPeriod != 0 {
		p := uint64(in.CPUPeriod)
		cpu.Period, useCPU = &p, true
	}
	if in.CPUQuota != 0 {
		q := in.CPUQuota
		cpu.Quota, useCPU = &q, true
	}
	if in.CPUShares != 0 {
		sh := uint64(in.CPUShares)
		cpu.Shares, useCPU = &sh, true
	}
	if in.CpusetCpus != "" || in.CpusetMems != "" {
		cpu.Cpus, cpu.Mems, useCPU = in.CpusetCpus, in.CpusetMems, true
	}
	if useCPU {
		out.CPU = cpu
	}
	if in.PidsLimit != nil {
		out.Pids = &specs.LinuxPids{Limit: *in.PidsLimit}
	}
	if in.BlkioWeight != 0 {
		w := in.BlkioWeight
		out.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return out
}
