package container

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/go-units"
)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// statusText is the human status `ps` shows: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created".
func statusText(st state, now time.Time) string {
	switch st.Status {
	case "running":
		if st.Paused {
			return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + " (Paused)"
		}
		up := "Up " + units.HumanDuration(now.Sub(st.StartedAt))
		switch h := st.Health; {
		case h == nil:
		case h.Status == container.Starting:
			up += " (health: starting)"
		case h.Status != "":
			up += " (" + h.Status + ")"
		}
		return up
	case "restarting":
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case "exited":
		if st.FinishedAt.IsZero() {
			return fmt.Sprintf("Exited (%d)", st.ExitCode)
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(st.FinishedAt)))
	case "removing":
		return "Removal In Progress"
	case "dead":
		return "Dead"
	}
	return "Created"
}

// healthText is a container's health as the ps filter sees it: "none" without a running healthcheck.
func healthText(st state) string {
	if st.Status != "running" || st.Health == nil {
		return container.NoHealthcheck
	}
	return st.Health.Status
}

func commandText(r *record) string {
	parts := append([]string{r.Path}, r.Args...)
	return strings.Join(parts, " ")
}

var listFilters = map[string]bool{"id": true, "name": true, "label": true, "status": true, "exited": true, "ancestor": true, "before": true, "since": true, "health": true, "volume": true}

// List returns containers as `docker ps` shows them, newest first.
func (s *Service) List(ctx context.Context, all bool, limit int, size bool, f filters.Args) ([]container.Summary, error) {
	if err := f.Validate(listFilters); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	for _, st := range f.Get("status") {
		switch st {
		case "created", "restarting", "running", "removing", "paused", "exited", "dead":
		default:
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid filter 'status=%s'", st))
		}
	}
	for _, h := range f.Get("health") {
		switch h {
		case container.Starting, container.Healthy, container.Unhealthy, container.NoHealthcheck:
		default:
			return nil, errdefs.InvalidParameter(fmt.Errorf("Unrecognised filter value for health: %s", h))
		}
	}
	var beforeT, sinceT time.Time
	for _, key := range []string{"before", "since"} {
		for _, ref := range f.Get(key) {
			c, err := s.get(ref)
			if err != nil {
				return nil, errdefs.InvalidParameter(err)
			}
			c.mu.Lock()
			if key == "before" {
				beforeT = c.rec.Created
			} else {
				sinceT = c.rec.Created
			}
			c.mu.Unlock()
		}
	}
	if f.Len() > 0 && f.Contains("status") {
		all = true
	}
	now := time.Now()
	out := []container.Summary{}
	for _, c := range s.all() {
		c.mu.Lock()
		r := c.rec
		c.mu.Unlock()
		if !all && r.State.Status != "running" && r.State.Status != "restarting" && limit <= 0 {
			continue
		}
		if !f.ExactMatch("status", r.State.status()) ||
			!f.MatchKVList("label", r.Config.Labels) ||
			(f.Contains("id") && !matchPrefix(f.Get("id"), r.ID)) ||
			(f.Contains("name") && !f.Match("name", r.Name)) ||
			(f.Contains("ancestor") && !f.ExactMatch("ancestor", r.ImageRef) && !f.ExactMatch("ancestor", r.ImageID)) {
			continue
		}
		if f.Contains("volume") && !usesVolume(f.Get("volume"), &r) {
			continue
		}
		if f.Contains("health") && !f.ExactMatch("health", healthText(r.State)) {
			continue
		}
		if f.Contains("exited") {
			if r.State.Status != "exited" || !f.ExactMatch("exited", strconv.Itoa(r.State.ExitCode)) {
				continue
			}
		}
		if !beforeT.IsZero() && !r.Created.Before(beforeT) {
			continue
		}
		if !sinceT.IsZero() && !r.Created.After(sinceT) {
			continue
		}
		sm := s.summary(&r, now)
		sm.Mounts = s.apiMounts(&r)
		out = append(out, sm)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func matchPrefix(prefixes []string, id string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

func (svc *Service) summary(r *record, now time.Time) container.Summary {
	s := container.Summary{
		ID:      r.ID,
		Names:   []string{"/" + r.Name},
		Image:   r.ImageRef,
		ImageID: r.ImageID,
		Command: commandText(r),
		Created: r.Created.Unix(),
		Ports:   svc.portsSummary(r),
		Labels:  r.Config.Labels,
		State:   container.ContainerState(r.State.status()),
		Status:  statusText(r.State, now),
		Mounts:  []container.MountPoint{},
	}
	s.HostConfig.NetworkMode = string(r.HostConfig.NetworkMode)
	if s.HostConfig.NetworkMode == "" {
		s.HostConfig.NetworkMode = "none"
	}
	s.NetworkSettings = &container.NetworkSettingsSummary{Networks: svc.networkSettings(r).Networks}
	return s
}

// Inspect returns the full description of one container.
func (s *Service) Inspect(ctx context.Context, ref string) (*container.InspectResponse, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	r := c.rec
	c.mu.Unlock()
	st := &container.State{
		Status:     container.ContainerState(r.State.status()),
		Running:    r.State.Status == "running" || r.State.Status == "restarting",
		Paused:     r.State.Status == "running" && r.State.Paused,
		Restarting: r.State.Status == "restarting",
		Dead:       r.State.Status == "dead",
		OOMKilled:  r.State.OOMKilled,
		Pid:        r.State.Pid,
		ExitCode:   r.State.ExitCode,
		Error:      r.State.Error,
		StartedAt:  fmtTime(r.State.StartedAt),
		FinishedAt: fmtTime(r.State.FinishedAt),
		Health:     r.State.Health,
	}
	base := &container.ContainerJSONBase{
		ID:              r.ID,
		Created:         fmtTime(r.Created),
		Path:            r.Path,
		Args:            r.Args,
		State:           st,
		Image:           r.ImageID,
		ResolvConfPath:  r.ResolvPath,
		HostnamePath:    r.HostnamePath,
		HostsPath:       r.HostsPath,
		LogPath:         r.LogPath,
		Name:            "/" + r.Name,
		RestartCount:    r.RestartCount,
		Driver:          "overlay2",
		Platform:        "linux",
		HostConfig:      r.HostConfig,
		MountLabel:      "",
		ProcessLabel:    "",
		AppArmorProfile: "",
	}
	if base.Args == nil {
		base.Args = []string{}
	}
	resp := &container.InspectResponse{
		ContainerJSONBase: base,
		Mounts:            s.apiMounts(&r),
		Config:            r.Config,
		NetworkSettings:   s.networkSettings(&r),
	}
	return resp, nil
}

// usesVolume is ps's volume filter: a volume name or a mount's destination.
func usesVolume(vals []string, r *record) bool {
	for _, v := range vals {
		for _, mp := range r.MountPoints {
			if mp.Name == v || mp.Destination == v || (mp.Type == "bind" && mp.Source == v) {
				return true
			}
		}
	}
	return false
}
