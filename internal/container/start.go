package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/berth-dev/berth/internal/runtime/reaper"
	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/docker/docker/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Start runs a created or exited container. It returns once the container's entrypoint runs, or with
// the reason it could not (a missing binary's message is what the CLI keys exit code 127 on).
func (s *Service) Start(ctx context.Context, ref string) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.rec.State.Status {
	case "running", "restarting":
		return errdefs.NotModified(fmt.Errorf("container %s is already running", c.rec.ID))
	case "removing", "dead":
		return errdefs.Conflict(fmt.Errorf("container is marked for removal and cannot be started"))
	}
	// A start by the user begins a new life for the restart policy, as in Docker.
	c.cancelRestart()
	c.rec.ManuallyStopped = false
	c.rec.RestartCount = 0
	c.backoff = 0
	if err := s.start(ctx, c); err != nil {
		c.rec.State.Error = err.Error()
		c.rec.State.ExitCode = exitCodeForStartError(err)
		if c.rec.State.Status == "running" {
			c.rec.State.Status = "exited"
		}
		_ = saveRecord(s.cfg.DB, &c.rec)
		s.failPending(c)
		c.notify()
		if c.rec.HostConfig.AutoRemove {
			go s.autoRemove(c.rec.ID)
		}
		return err
	}
	return nil
}

// start does the work of Start with c locked.
func (s *Service) start(ctx context.Context, c *ctr) error {
	id := c.rec.ID
	// The monitor may still hold the previous run of this container. A container that never ran has
	// none (a failed start cleans up after itself), which saves a call on the path of every `run`.
	clearPrevious := func() error {
		if err := s.cfg.Monitor.Delete(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("clearing the previous run: %w", err)
		}
		return nil
	}
	if !c.rec.State.StartedAt.IsZero() || c.exited != nil {
		if err := clearPrevious(); err != nil {
			return err
		}
	}
	bundle := s.bundleDir(id)
	rootfs := s.rootfsDir(id)
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return err
	}
	if err := s.mountRootfs(ctx, &c.rec, rootfs); err != nil {
		return fmt.Errorf("mounting the root filesystem: %w", err)
	}
	cleanup := func() {
		s.dropRemapMounts(id)
		_ = s.cfg.Rootfs.Unmount(rootfs)
	}
	mounts, unmountVolumes, err := s.startMounts(ctx, &c.rec, rootfs)
	if err != nil {
		cleanup()
		return err
	}
	cleanup = func() {
		unmountVolumes()
		s.dropRemapMounts(id)
		_ = s.cfg.Rootfs.Unmount(rootfs)
	}
	opts, err := s.specOptions(&c.rec, rootfs)
	if err != nil {
		cleanup()
		return err
	}
	opts.Mounts = append(opts.Mounts, mounts...)
	teardownNet, err := s.setupNetwork(ctx, &c.rec, &opts)
	if err != nil {
		cleanup()
		return err
	}
	undoMounts := cleanup
	cleanup = func() {
		teardownNet()
		undoMounts()
	}
	rm := s.remap(&c.rec)
	if rm != nil {
		if err := s.prepareRemapped(&c.rec, rm); err != nil {
			cleanup()
			return err
		}
	}
	sp, err := spec.Generate(opts)
	if err != nil {
		cleanup()
		return err
	}
	if rm != nil {
		if err := s.remapSysfs(sp, rm, opts.NetNSPath, id); err != nil {
			cleanup()
			return err
		}
	}
	if err := spec.WriteBundle(bundle, sp); err != nil {
		cleanup()
		return err
	}
	runtime := s.cfg.DefaultRuntime
	if r := c.rec.HostConfig.Runtime; r != "" {
		runtime = r
	}
	if p, ok := s.cfg.Runtimes[runtime]; ok {
		runtime = p
	}
	if runtime == "berth" {
		runtime = ""
	}
	req := CreateRequest{
		ID: id, Bundle: bundle, Runtime: runtime, LogPath: c.rec.LogPath,
		OpenStdin: c.rec.Config.OpenStdin, StdinOnce: c.rec.Config.StdinOnce, Tty: c.rec.Config.Tty,
		Height: c.rec.HostConfig.ConsoleSize[0], Width: c.rec.HostConfig.ConsoleSize[1],
	}
	err = s.cfg.Monitor.Create(ctx, req)
	if errdefs.IsConflict(err) {
		// A leftover after all (say, a start that failed before it could clean up).
		if err = clearPrevious(); err == nil {
			err = s.cfg.Monitor.Create(ctx, req)
		}
	}
	if err != nil {
		cleanup()
		return err
	}
	s.connectPending(ctx, c)
	c.exited = make(chan struct{})
	pid, err := s.cfg.Monitor.Start(ctx, id)
	s.dropRemapMounts(id) // the container has its own copies now
	if err != nil {
		close(c.exited)
		_ = s.cfg.Monitor.Delete(context.WithoutCancel(ctx), id)
		cleanup()
		return startError(err)
	}
	c.rec.State = state{Status: "running", Pid: pid, StartedAt: time.Now().UTC(), Health: c.rec.State.Health}
	c.noRestart = false
	s.startHealth(c, true)
	if err := saveRecord(s.cfg.DB, &c.rec); err != nil {
		s.log.Error("saving container state", "id", id, "err", err)
	}
	c.notify()
	s.event("start", id, map[string]string{"name": c.rec.Name})
	return nil
}

// startError keeps the runtime's message, which the docker CLI matches to pick exit codes 126 and 127,
// and classifies it as Docker does: a bad command is the caller's mistake.
func startError(err error) error {
	msg := err.Error()
	e := fmt.Errorf("failed to create task for container: OCI runtime create failed: unable to start container process: %s: unknown", msg)
	if strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") ||
		strings.Contains(msg, "permission denied") || strings.Contains(msg, "is a directory") || strings.Contains(msg, "unable to find user") {
		return errdefs.InvalidParameter(e)
	}
	return errdefs.System(e)
}

func exitCodeForStartError(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 128
}

// specOptions translates a container's configuration into the runtime's terms.
func (s *Service) specOptions(r *record, rootfs string) (spec.Options, error) {
	hc := r.HostConfig
	res := hc.Resources
	sec, err := spec.ParseSecurityOpt(hc.SecurityOpt, false)
	if err != nil {
		return spec.Options{}, err
	}
	o := spec.Options{
		ID:                r.ID,
		Rootfs:            rootfs,
		Args:              append([]string{r.Path}, r.Args...),
		Env:               r.Config.Env,
		Cwd:               r.Config.WorkingDir,
		User:              r.Config.User,
		GroupAdd:          hc.GroupAdd,
		Hostname:          r.Config.Hostname,
		Tty:               r.Config.Tty,
		OpenStdin:         r.Config.OpenStdin,
		ReadonlyRootfs:    hc.ReadonlyRootfs,
		Privileged:        hc.Privileged,
		CapAdd:            hc.CapAdd,
		CapDrop:           hc.CapDrop,
		CgroupsPath:       "/berth/" + r.ID,
		ShmSize:           hc.ShmSize,
		NoNewPrivileges:   sec.NoNewPrivileges,
		Seccomp:           sec.Seccomp,
		MaskedPaths:       hc.MaskedPaths,
		ReadonlyPaths:     hc.ReadonlyPaths,
		Devices:           specDevices(hc.Devices),
		DeviceCgroupRules: hc.DeviceCgroupRules,
		Resources: spec.Resources{
			Memory:      res.Memory,
			MemorySwap:  res.MemorySwap,
			NanoCPUs:    res.NanoCPUs,
			CPUShares:   res.CPUShares,
			CpusetCpus:  res.CpusetCpus,
			CpusetMems:  res.CpusetMems,
			PidsLimit:   res.PidsLimit,
			BlkioWeight: res.BlkioWeight,
		},
	}
	o.UIDMappings, o.GIDMappings = remapSpec(s.remap(r))
	for _, u := range res.Ulimits {
		o.Ulimits = append(o.Ulimits, spec.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	bind := func(src, dst string) specs.Mount {
		opts := []string{"rbind", "rprivate"}
		if hc.ReadonlyRootfs {
			opts = append(opts, "ro")
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: opts}
	}
	o.Mounts = append(o.Mounts,
		bind(r.ResolvPath, "/etc/resolv.conf"),
		bind(r.HostnamePath, "/etc/hostname"),
		bind(r.HostsPath, "/etc/hosts"),
	)
	if hc.Init != nil && *hc.Init {
		if s.cfg.InitBinary == "" {
			return o, errdefs.InvalidParameter(errors.New("--init is not available: berthd found no init binary to put in the container"))
		}
		o.Mounts = append(o.Mounts, specs.Mount{Destination: reaper.Path, Type: "bind", Source: s.cfg.InitBinary,
			Options: []string{"bind", "ro", "nosuid", "nodev", "rprivate"}})
		o.Args = append([]string{reaper.Path, "--"}, o.Args...)
	}
	return o, nil
}

func specDevices(in []container.DeviceMapping) []spec.Device {
	out := make([]spec.Device, 0, len(in))
	for _, d := range in {
		out = append(out, spec.Device{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions})
	}
	return out
}

// handleExit records the end of a container's run. It is called for every exit the monitor reports,
// and for exits discovered at restore.
func (s *Service) handleExit(e Exit) {
	c, err := s.get(e.ID)
	if err != nil {
		return // removed meanwhile
	}
	c.mu.Lock()
	if c.rec.State.Status != "running" {
		c.mu.Unlock()
		return
	}
	wasPaused := c.rec.State.Paused
	c.rec.State.Status = "exited"
	c.rec.State.Paused = false
	c.rec.State.Pid = 0
	c.rec.State.ExitCode = e.ExitCode
	c.rec.State.OOMKilled = e.OOMKilled
	c.rec.State.FinishedAt = e.FinishedAt
	if c.rec.State.FinishedAt.IsZero() {
		c.rec.State.FinishedAt = time.Now().UTC()
	}
	if wasPaused {
		// Something killed the frozen container behind our back; a frozen cgroup would hang its next run.
		if cg, err := cgroups.New(cgroupPath(c.rec.ID)); err == nil {
			_ = cg.Thaw()
		}
	}
	restart := !c.noRestart && !c.rec.HostConfig.AutoRemove &&
		policyWants(c.rec.HostConfig.RestartPolicy, e.ExitCode, c.rec.RestartCount, c.rec.ManuallyStopped)
	var delay time.Duration
	if restart {
		delay = c.nextBackoff(c.rec.State.FinishedAt.Sub(c.rec.State.StartedAt))
		c.rec.RestartCount++
		c.rec.State.Status = "restarting"
	}
	s.teardownNetwork(c.rec.ID)
	if err := s.cfg.Rootfs.Unmount(s.rootfsDir(c.rec.ID)); err != nil {
		s.log.Warn("unmounting container rootfs", "id", c.rec.ID, "err", err)
	}
	s.unmountVolumes(&c.rec)
	if err := saveRecord(s.cfg.DB, &c.rec); err != nil {
		s.log.Error("saving container state", "id", c.rec.ID, "err", err)
	}
	if c.exited != nil {
		select {
		case <-c.exited:
		default:
			close(c.exited)
		}
	}
	c.exits++
	c.notify()
	autoRemove := c.rec.HostConfig.AutoRemove
	attrs := map[string]string{"name": c.rec.Name, "exitCode": fmt.Sprint(e.ExitCode)}
	if e.OOMKilled {
		s.event("oom", c.rec.ID, map[string]string{"name": c.rec.Name})
	}
	s.event("die", e.ID, attrs)
	if restart {
		s.scheduleRestart(c, delay)
	}
	c.mu.Unlock()
	if autoRemove {
		s.autoRemove(e.ID)
	}
}

func (s *Service) autoRemove(id string) {
	if err := s.Remove(context.Background(), id, true, true); err != nil && !errdefs.IsNotFound(err) {
		s.log.Error("auto-removing container", "id", id, "err", err)
	}
}

// watchExits follows the monitor's exit events until ctx ends, reconnecting when the stream breaks.
func (s *Service) watchExits(ctx context.Context, ready chan<- struct{}) {
	first := true
	for ctx.Err() == nil {
		ch, err := s.cfg.Monitor.Events(ctx)
		if err != nil {
			if first {
				close(ready)
				first = false
			}
			s.log.Warn("monitor event stream", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		if first {
			close(ready)
			first = false
		} else {
			// Exits may have happened while the stream was down.
			s.reconcile(ctx)
		}
		for e := range ch {
			s.handleExit(e)
		}
	}
}

// Restore reconciles the recorded state of every container with what the monitor knows, then follows the
// monitor's exit events. Containers that exited while berthd was away get their real exit codes.
func (s *Service) Restore(ctx context.Context) error {
	ready := make(chan struct{})
	go s.watchExits(ctx, ready)
	<-ready
	if err := s.reconcile(ctx); err != nil {
		return err
	}
	s.autoStart(ctx)
	return nil
}

func (s *Service) reconcile(ctx context.Context) error {
	procs, err := s.cfg.Monitor.List(ctx)
	if err != nil {
		return fmt.Errorf("listing the monitor's containers: %w", err)
	}
	known := map[string]ProcState{}
	for _, p := range procs {
		known[p.ID] = p
	}
	for _, c := range s.all() {
		c.mu.Lock()
		st := c.rec.State.Status
		if st == "running" && c.exited == nil {
			c.exited = make(chan struct{})
		}
		c.mu.Unlock()
		if st != "running" {
			continue
		}
		p, ok := known[c.rec.ID]
		switch {
		case ok && p.Status == "running":
			// Still alive: only the healthcheck, which lives in berthd, needs picking up again.
			c.mu.Lock()
			if c.rec.State.Status == "running" {
				s.startHealth(c, false)
				// The volume service counts running users in memory; tell it again.
				for _, n := range volumeNames(&c.rec) {
					if s.cfg.Volumes != nil {
						_, _ = s.cfg.Volumes.Mount(ctx, n, c.rec.ID)
					}
				}
			}
			c.mu.Unlock()
		case ok && p.Status == "exited":
			s.handleExit(Exit{ID: c.rec.ID, ExitCode: p.ExitCode, OOMKilled: p.OOMKilled, FinishedAt: p.FinishedAt})
		default:
			s.handleExit(Exit{ID: c.rec.ID, ExitCode: 255, FinishedAt: time.Now().UTC()})
		}
	}
	// Containers removed while berthd was down leave monitor entries behind.
	for id, p := range known {
		if _, err := s.get(id); errdefs.IsNotFound(err) && p.Status != "running" {
			_ = s.cfg.Monitor.Delete(ctx, id)
		}
	}
	return nil
}

var errNotRunning = errors.New("not running")

func (s *Service) containerDir(id string) string { return filepath.Join(s.cfg.Root, id) }
