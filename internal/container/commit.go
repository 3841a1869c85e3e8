package container

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// CommitOptions are POST /commit's options.
type CommitOptions struct {
	Ref     string   // repository[:tag] for the new image; "" leaves it untagged
	Comment string   // the image's comment and history entry
	Author  string   // the image's author
	Changes []string // Dockerfile instructions applied to the config (CMD, ENV, ...)
	// Pause freezes a running container while its layer is read, so the image is a consistent snapshot.
	Pause bool
	// Config, when set, overrides the container's config field by field (non-empty fields win).
	Config *container.Config
}

// CommitImage is what the image service needs to write a committed image.
type CommitImage struct {
	ParentID    string // the container's image ("sha256:..."), whose layers come first
	Layer       io.Reader
	Config      dockerspec.DockerOCIImageConfig // the container's config, before Changes
	Changes     []string
	Ref         string
	Author      string
	Comment     string
	ContainerID string
}

// ImageCommitter writes a committed image through the image service's one write path. The service finds
// it on its ImageResolver: the daemon's resolver adapter implements both.
type ImageCommitter interface {
	CommitImage(ctx context.Context, img CommitImage) (string, error)
}

// Commit makes a new image from the container's image plus its writable layer, for POST /commit, and
// returns the image ID.
func (s *Service) Commit(ctx context.Context, ref string, opts CommitOptions) (string, error) {
	c, err := s.get(ref)
	if err != nil {
		return "", err
	}
	ic, ok := s.cfg.Images.(ImageCommitter)
	if !ok {
		return "", errdefs.NotImplemented(errors.New("this daemon cannot commit containers"))
	}
	c.mu.Lock()
	rec := c.rec
	running := c.running()
	c.mu.Unlock()
	switch rec.State.Status {
	case "removing", "dead":
		return "", errdefs.Conflict(fmt.Errorf("container %s is marked for removal and cannot be committed", rec.ID))
	}
	dirs, err := s.layerDirs(ctx, rec.ID)
	if err != nil {
		return "", err
	}
	if opts.Pause && running && !rec.State.Paused {
		cg, err := cgroups.New("/berth/" + rec.ID)
		if err != nil {
			return "", errdefs.System(err)
		}
		if err := cg.Freeze(); err != nil {
			cg.Thaw()
			return "", errdefs.System(fmt.Errorf("pausing the container for commit: %w", err))
		}
		defer cg.Thaw()
	}

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeLayer(ctx, pw, dirs)) }()
	defer pr.Close()
	id, err := ic.CommitImage(ctx, CommitImage{
		ParentID:    rec.ImageID,
		Layer:       pr,
		Config:      imageConfig(rec.Config, opts.Config),
		Changes:     opts.Changes,
		Ref:         opts.Ref,
		Author:      opts.Author,
		Comment:     opts.Comment,
		ContainerID: rec.ID,
	})
	if err != nil {
		return "", err
	}
	s.event("commit", rec.ID, map[string]string{"comment": opts.Comment, "imageID": id, "imageRef": opts.Ref})
	return id, nil
}

// imageConfig is what an image made from a container keeps of its config, override's non-empty
// fields first.
func imageConfig(cfg, override *container.Config) dockerspec.DockerOCIImageConfig {
	m := container.Config{}
	if cfg != nil {
		m = *cfg
	}
	if o := override; o != nil {
		if o.User != "" {
			m.User = o.User
		}
		if len(o.Env) > 0 {
			m.Env = mergeEnv(m.Env, o.Env)
		}
		if len(o.Cmd) > 0 {
			m.Cmd = o.Cmd
		}
		if len(o.Entrypoint) > 0 {
			m.Entrypoint = o.Entrypoint
		}
		if o.WorkingDir != "" {
			m.WorkingDir = o.WorkingDir
		}
		if o.StopSignal != "" {
			m.StopSignal = o.StopSignal
		}
		for k, v := range o.Labels {
			if m.Labels == nil {
				m.Labels = map[string]string{}
			}
			m.Labels[k] = v
		}
		for p := range o.ExposedPorts {
			if m.ExposedPorts == nil {
				m.ExposedPorts = nat.PortSet{}
			}
			m.ExposedPorts[p] = struct{}{}
		}
		for v := range o.Volumes {
			if m.Volumes == nil {
				m.Volumes = map[string]struct{}{}
			}
			m.Volumes[v] = struct{}{}
		}
		if o.Healthcheck != nil {
			m.Healthcheck = o.Healthcheck
		}
	}
	var ic dockerspec.DockerOCIImageConfig
	ic.User, ic.Env, ic.Cmd, ic.Entrypoint, ic.WorkingDir, ic.StopSignal = m.User, m.Env, m.Cmd, m.Entrypoint, m.WorkingDir, m.StopSignal
	if len(m.Labels) > 0 {
		ic.Labels = m.Labels
	}
	if len(m.ExposedPorts) > 0 {
		ic.ExposedPorts = map[string]struct{}{}
		for p := range m.ExposedPorts {
			ic.ExposedPorts[string(p)] = struct{}{}
		}
	}
	if len(m.Volumes) > 0 {
		ic.Volumes = m.Volumes
	}
	if h := m.Healthcheck; h != nil {
		ic.Healthcheck = &dockerspec.HealthcheckConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, StartInterval: h.StartInterval, Retries: h.Retries}
	}
	ic.OnBuild, ic.Shell, ic.ArgsEscaped = m.OnBuild, m.Shell, m.ArgsEscaped //nolint:staticcheck // kept for Windows images, as Docker does
	return ic
}

// writeLayer writes the container's writable layer as an OCI layer tar, without the runtime's mount
// points (see initPaths).
func writeLayer(ctx context.Context, w io.Writer, d LayerDirs) error {
	if rm := d.Shifted; rm != nil {
		d.Shifted = nil
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeLayer(ctx, pw, d)) }()
		r := unshiftTar(pr, rm)
		defer r.Close()
		_, err := io.Copy(w, r)
		return err
	}
	if !d.Overlay {
		return treeLayer(ctx, w, d)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Diff(ctx, pw, d.Upper)) }()
	defer pr.Close()
	tr, tw := tar.NewReader(pr), tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		p := "/" + strings.TrimSuffix(path.Clean(hdr.Name), "/")
		if initPaths[p] && (hdr.Typeflag == tar.TypeDir || hdr.Size == 0) && !lowerHas(d.Lowers, p) {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// treeLayer makes a layer from a copied tree by comparing it with the image's tree: added and changed
// entries are written from the container's tree, deletions become whiteouts. Hardlinks are stored as
// separate files.
func treeLayer(ctx context.Context, w io.Writer, d LayerDirs) error {
	changes, err := treeChanges(ctx, d.Upper, d.Parent)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, c := range dropInitPaths(changes) {
		rel := strings.TrimPrefix(c.Path, "/")
		if c.Kind == container.ChangeDelete {
			dir, base := path.Split(rel)
			hdr := &tar.Header{Name: dir + ".wh." + base, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		if err := archive.WriteEntry(tw, filepath.Join(d.Upper, rel), rel, true); err != nil {
			return err
		}
	}
	return tw.Close()
}
