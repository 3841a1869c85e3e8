package volume

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
)

var (
	listFilters  = map[string]bool{"dangling": true, "driver": true, "label": true, "name": true}
	pruneFilters = map[string]bool{"label": true, "label!": true, "all": true}
)

// List returns the volumes matching f (dangling, driver, label, name), sorted by name.
func (s *Service) List(ctx context.Context, f filters.Args) (volume.ListResponse, error) {
	if err := f.Validate(listFilters); err != nil {
		return volume.ListResponse{}, errdefs.InvalidParameter(err)
	}
	dangling, hasDangling, err := boolFilter(f, "dangling")
	if err != nil {
		return volume.ListResponse{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := volume.ListResponse{Volumes: []*volume.Volume{}, Warnings: []string{}}
	for _, r := range s.sorted() {
		if f.Contains("name") && !f.Match("name", r.Name) {
			continue
		}
		if f.Contains("driver") && !f.ExactMatch("driver", r.Driver) {
			continue
		}
		if f.Contains("label") && !f.MatchKVList("label", r.Labels) {
			continue
		}
		if hasDangling && (len(s.refs[r.Name]) == 0) != dangling {
			continue
		}
		v := s.view(r)
		out.Volumes = append(out.Volumes, &v)
	}
	return out, nil
}

func (s *Service) sorted() []*record {
	out := make([]*record, 0, len(s.vols))
	for _, r := range s.vols {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Prune removes unused volumes matching f: by default only anonymous ones, every unused one with
// all=true (Docker's rule since API 1.42). It reports what it removed and the bytes freed.
func (s *Service) Prune(ctx context.Context, f filters.Args) (volume.PruneReport, error) {
	rep := volume.PruneReport{VolumesDeleted: []string{}}
	if err := f.Validate(pruneFilters); err != nil {
		return rep, errdefs.InvalidParameter(err)
	}
	all, _, err := boolFilter(f, "all")
	if err != nil {
		return rep, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.sorted() {
		if len(s.refs[r.Name]) > 0 {
			continue
		}
		if _, anon := r.Labels[AnonymousLabel]; !anon && !all {
			continue
		}
		if f.Contains("label") && !f.MatchKVList("label", r.Labels) {
			continue
		}
		if f.Contains("label!") && f.MatchKVList("label!", r.Labels) {
			continue
		}
		size, err := s.remove(r.Name)
		if err != nil {
			s.log.Warn("pruning volume", "volume", r.Name, "err", err)
			continue
		}
		rep.VolumesDeleted = append(rep.VolumesDeleted, r.Name)
		rep.SpaceReclaimed += size
	}
	return rep, nil
}

func boolFilter(f filters.Args, key string) (value, present bool, err error) {
	vals := f.Get(key)
	if len(vals) == 0 {
		return false, false, nil
	}
	for _, v := range vals {
		switch strings.ToLower(v) {
		case "true", "1":
			value = true
		case "false", "0":
		default:
			return false, false, errdefs.InvalidParameter(fmt.Errorf("invalid filter '%s=%s'", key, v))
		}
	}
	return value, true, nil
}

// diskUsage adds up the allocated size of the files under dir, counting hard links once.
func diskUsage(dir string) uint64 {
	var total uint64
	seen := map[uint64]bool{}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := statOf(fi); ok {
			if st.Nlink > 1 {
				if seen[st.Ino] {
					return nil
				}
				seen[st.Ino] = true
			}
			total += uint64(st.Blocks) * 512
		}
		return nil
	})
	return total
}
