package container

import (
	"context"
	"github.com/berth-dev/berth/internal/filterutil"
	"io/fs"
	"path/filepath"
	"strconv"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// pruneFilters are the filters POST /containers/prune accepts, as in Docker.
var pruneFilters = map[string]bool{"label": true, "label!": true, "until": true}

// Prune removes every stopped container (created, exited or dead) that the filters select, as `docker
// container prune` does: `until` keeps containers created after a time, `label` keeps those without a
// label, `label!` those with one. Volumes stay. A container that starts or goes away meanwhile is skipped.
func (s *Service) Prune(ctx context.Context, f filters.Args) (container.PruneReport, error) {
	rep := container.PruneReport{}
	if err := f.Validate(pruneFilters); err != nil {
		return rep, errdefs.InvalidParameter(err)
	}
	until, err := filterutil.Until(f)
	if err != nil {
		return rep, err
	}
	for _, c := range s.all() {
		if ctx.Err() != nil {
			break
		}
		c.mu.Lock()
		r := c.rec
		c.mu.Unlock()
		switch r.State.Status {
		case "created", "exited", "dead":
		default:
			continue
		}
		if !until.IsZero() && r.Created.After(until) {
			continue
		}
		var labels map[string]string
		if r.Config != nil {
			labels = r.Config.Labels
		}
		if !f.MatchKVList("label", labels) || (f.Contains("label!") && f.MatchKVList("label!", labels)) {
			continue
		}
		size := s.rwSize(ctx, r.ID)
		if err := s.Remove(ctx, r.ID, false, false); err != nil {
			if !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
				s.log.Warn("pruning container", "id", r.ID, "err", err)
			}
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, r.ID)
		rep.SpaceReclaimed += size
	}
	s.event("prune", "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	return rep, nil
}

// rwSize is the bytes in a container's writable layer (what removing it frees), or 0 when the
// snapshotter cannot say.
func (s *Service) rwSize(ctx context.Context, id string) uint64 {
	d, err := s.layerDirs(ctx, id)
	if err != nil || !d.Overlay {
		return 0
	}
	var n uint64
	_ = filepath.WalkDir(d.Upper, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += uint64(fi.Size())
			}
		}
		return nil
	})
	return n
}
