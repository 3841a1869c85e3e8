package container

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Create makes a container from cfg: it resolves the image, merges the image's defaults into the
// configuration, prepares the writable layer and the per-container files, and records it. Nothing is
// left behind when it fails.
func (s *Service) Create(ctx context.Context, name string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error) {
	var resp container.CreateResponse
	if cfg == nil {
		return resp, errdefs.InvalidParameter(errors.New("config cannot be empty in order to create a container"))
	}
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if cfg.Image == "" {
		return resp, errdefs.InvalidParameter(errors.New("no image specified"))
	}
	if err := validateHostConfig(hc); err != nil {
		return resp, err
	}
	if err := s.validateUserns(hc); err != nil {
		return resp, err
	}
	nc, err := s.prepareNetworking(cfg, hc, nc)
	if err != nil {
		return resp, err
	}
	img, err := s.cfg.Images.Resolve(ctx, cfg.Image)
	if err != nil {
		return resp, err
	}
	merged := mergeImageConfig(cfg, img.Config)
	if len(merged.Entrypoint) == 0 && len(merged.Cmd) == 0 {
		return resp, errdefs.InvalidParameter(errors.New("no command specified"))
	}
	if hc.Runtime != "" && hc.Runtime != "berth" {
		if _, ok := s.cfg.Runtimes[hc.Runtime]; !ok {
			return resp, errdefs.InvalidParameter(fmt.Errorf("unknown or invalid runtime name: %s", hc.Runtime))
		}
	}

	id := newID()
	if name == "" {
		name = s.generateName(id)
	} else if err := s.reserveName(name, id); err != nil {
		return resp, err
	}
	name = strings.TrimPrefix(name, "/")
	if merged.Hostname == "" {
		merged.Hostname = id[:12]
	}
	argv := append(append([]string{}, merged.Entrypoint...), merged.Cmd...)
	rec := record{
		ID: id, Name: name, Created: time.Now().UTC(),
		ImageRef: cfg.Image, ImageID: img.ID, ChainID: img.ChainID,
		Path: argv[0], Args: argv[1:],
		Config: merged, HostConfig: hc, Networking: nc,
		State:        state{Status: "created"},
		LogPath:      filepath.Join(s.dataDir(id), id+"-json.log"),
		HostnamePath: filepath.Join(s.dataDir(id), "hostname"),
		HostsPath:    filepath.Join(s.dataDir(id), "hosts"),
		ResolvPath:   filepath.Join(s.dataDir(id), "resolv.conf"),
	}

	mps, undoMounts, err := s.resolveMounts(ctx, id, merged, hc)
	if err != nil {
		s.releaseName(name, id)
		return resp, err
	}
	rec.MountPoints = mps
	undo := func() {
		undoMounts()
		_ = s.cfg.Rootfs.Remove(context.WithoutCancel(ctx), id)
		_ = os.RemoveAll(s.dataDir(id))
		s.releaseName(name, id)
	}
	if err := s.cfg.Rootfs.Prepare(ctx, id, img.ChainID); err != nil {
		undo()
		return resp, fmt.Errorf("preparing the root filesystem: %w", err)
	}
	if err := writeContainerFiles(&rec); err != nil {
		undo()
		return resp, err
	}
	if err := saveRecord(s.cfg.DB, &rec); err != nil {
		undo()
		return resp, err
	}
	c := &ctr{rec: rec}
	s.mu.Lock()
	s.byID[id] = c
	s.mu.Unlock()
	s.setMeta(id, &rec)
	s.event("create", id, map[string]string{"name": name, "image": cfg.Image})
	return container.CreateResponse{ID: id, Warnings: []string{}}, nil
}

// mergeImageConfig applies Docker's rules for what a container inherits from its image.
func mergeImageConfig(cfg *container.Config, ic dockerspec.DockerOCIImageConfig) *container.Config {
	m := *cfg
	// An entrypoint given on the command line drops the image's CMD unless a command is also given.
	if cfg.Entrypoint == nil {
		m.Entrypoint = ic.Entrypoint
		if len(cfg.Cmd) == 0 {
			m.Cmd = ic.Cmd
		}
	} else if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		m.Entrypoint = nil
	}
	m.Env = mergeEnv(ic.Env, cfg.Env)
	if m.WorkingDir == "" {
		m.WorkingDir = ic.WorkingDir
	}
	if m.User == "" {
		m.User = ic.User
	}
	if m.StopSignal == "" {
		m.StopSignal = ic.StopSignal
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		m.Labels = labels
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	if len(ic.ExposedPorts) > 0 {
		ports := nat.PortSet{}
		for p := range ic.ExposedPorts {
			ports[nat.Port(p)] = struct{}{}
		}
		for p := range m.ExposedPorts {
			ports[p] = struct{}{}
		}
		m.ExposedPorts = ports
	}
	if m.Healthcheck == nil && ic.Healthcheck != nil {
		h := ic.Healthcheck
		m.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	if len(ic.Volumes) > 0 {
		vols := map[string]struct{}{}
		for v := range ic.Volumes {
			vols[v] = struct{}{}
		}
		for v := range m.Volumes {
			vols[v] = struct{}{}
		}
		m.Volumes = vols
	}
	return &m
}

// mergeEnv overlays user variables on the image's, by name, keeping the image's order first.
func mergeEnv(image, user []string) []string {
	out := append([]string{}, image...)
	idx := map[string]int{}
	for i, kv := range out {
		idx[envKey(kv)] = i
	}
	for _, kv := range user {
		if i, ok := idx[envKey(kv)]; ok {
			out[i] = kv
			continue
		}
		idx[envKey(kv)] = len(out)
		out = append(out, kv)
	}
	if _, ok := idx["PATH"]; !ok {
		out = append(out, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return out
}

func envKey(kv string) string {
	k, _, _ := strings.Cut(kv, "=")
	return k
}

// validateHostConfig rejects limits Docker rejects, with Docker's messages.
func validateHostConfig(hc *container.HostConfig) error {
	if err := spec.ValidateSecurity(hc.SecurityOpt, hc.Privileged, hc.CapAdd, hc.CapDrop); err != nil {
		return err
	}
	if err := spec.ValidateDevices(specDevices(hc.Devices), hc.DeviceCgroupRules); err != nil {
		return err
	}
	r := hc.Resources
	if r.Memory < 0 {
		return errdefs.InvalidParameter(errors.New("invalid memory limit: must be non-negative"))
	}
	if r.Memory > 0 && r.Memory < 6*1024*1024 {
		return errdefs.InvalidParameter(errors.New("Minimum memory limit allowed is 6MB"))
	}
	if r.MemorySwap > 0 && r.Memory == 0 {
		return errdefs.InvalidParameter(errors.New("You should always set the Memory limit when using Memoryswap limit, see usage"))
	}
	if r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return errdefs.InvalidParameter(errors.New("Minimum memoryswap limit should be larger than memory limit, see usage"))
	}
	if r.NanoCPUs < 0 {
		return errdefs.InvalidParameter(errors.New("invalid CPU limit: must be non-negative"))
	}
	if n := int64(goruntime.NumCPU()); r.NanoCPUs > n*1e9 {
		return errdefs.InvalidParameter(fmt.Errorf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n))
	}
	if r.NanoCPUs > 0 && r.NanoCPUs < 1e7 {
		return errdefs.InvalidParameter(fmt.Errorf("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", goruntime.NumCPU(), goruntime.NumCPU()))
	}
	if r.NanoCPUs > 0 && (r.CPUQuota > 0 || r.CPUPeriod > 0) {
		return errdefs.InvalidParameter(errors.New("Conflicting options: Nano CPUs and CPU Period cannot both be set"))
	}
	if r.CPUShares < 0 {
		return errdefs.InvalidParameter(errors.New("invalid CPU shares: must be non-negative"))
	}
	if r.CpusetCpus != "" {
		if err := validateCpuset(r.CpusetCpus, goruntime.NumCPU()); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("Invalid value %s for cpuset cpus", r.CpusetCpus))
		}
	}
	switch hc.RestartPolicy.Name {
	case "", "no", "always", "unless-stopped", "on-failure":
	default:
		return errdefs.InvalidParameter(fmt.Errorf("invalid restart policy '%s'", hc.RestartPolicy.Name))
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != "no" {
		return errdefs.InvalidParameter(errors.New("can't create 'AutoRemove' container with restart policy"))
	}
	return nil
}

func validateCpuset(s string, ncpu int) error {
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		var a, b int
		if _, err := fmt.Sscanf(lo, "%d", &a); err != nil || fmt.Sprint(a) != lo {
			return errors.New("bad cpuset")
		}
		b = a
		if isRange {
			if _, err := fmt.Sscanf(hi, "%d", &b); err != nil || fmt.Sprint(b) != hi || b < a {
				return errors.New("bad cpuset")
			}
		}
		if b >= ncpu {
			return errors.New("cpu out of range")
		}
	}
	return nil
}

// writeContainerFiles writes the files bind-mounted into every container: hostname, hosts, resolv.conf.
func writeContainerFiles(r *record) error {
	dir := filepath.Dir(r.HostnamePath)
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return err
	}
	host := r.Config.Hostname
	if r.Config.Domainname != "" {
		host += "." + r.Config.Domainname
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	files := map[string][]byte{
		r.HostnamePath: []byte(host + "\n"),
		r.HostsPath:    []byte(hosts),
		r.ResolvPath:   resolvConf(),
	}
	for p, data := range files {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	f, err := os.Create(r.LogPath)
	if err != nil {
		return err
	}
	return f.Close()
}

// resolvConf copies the host's resolver configuration without loopback nameservers, which would point at
// the container itself.
func resolvConf() []byte {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes()
}
