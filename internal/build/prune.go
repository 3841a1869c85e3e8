package build

import (
	"context"
	"encoding/binary"
	"github.com/berth-dev/berth/internal/filterutil"
	"sort"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	bolt "go.etcd.io/bbolt"
)

// ImageRemover deletes an image that nothing needs any more.
type ImageRemover interface {
	// RemoveUnused deletes the image id unless it is tagged, used by a container or the parent of
	// another image, and reports the bytes its own layer freed.
	RemoveUnused(ctx context.Context, id string) (removed bool, reclaimed int64)
	// LayerSize is the size of the image's own layer (what removing it would free), 0 when unknown.
	LayerSize(ctx context.Context, id string) int64
}

// PruneOptions choose what Prune removes, as `docker builder prune` does with BuildKit's cache.
type PruneOptions struct {
	// All is accepted for compatibility and changes nothing: like BuildKit's ordinary records, every
	// entry of this cache is prunable without it, and there are no internal records for it to add.
	All bool
	// KeepStorage, when positive, keeps the most recently used entries whose step images together take
	// at most this many bytes; older ones go.
	KeepStorage int64
	// Filters: until=<time or duration> spares entries a build made or used after it; label=... selects
	// nothing and label!=... everything, since cache entries have no labels (so `docker system prune
	// --filter label=x` keeps the cache).
	Filters filters.Args
}

var pruneFilters = map[string]bool{"until": true, "label": true, "label!": true}

// PruneReport is what Prune removed.
type PruneReport struct {
	CachesDeleted  []string // cache keys
	SpaceReclaimed uint64
}

type cacheEntry struct {
	key, id string
	used    time.Time
}

// Prune removes build cache entries and the step images only they kept: untagged, unused, and not
// under another image. Images under a tagged image stay until it goes.
func (s *Service) Prune(ctx context.Context, o PruneOptions) (PruneReport, error) {
	rep := PruneReport{CachesDeleted: []string{}}
	if err := o.Filters.Validate(pruneFilters); err != nil {
		return rep, errdefs.InvalidParameter(err)
	}
	until, err := filterutil.Until(o.Filters)
	if err != nil {
		return rep, err
	}
	entries, err := s.cacheEntries()
	if err != nil {
		return rep, err
	}
	if o.Filters.Contains("label") {
		return rep, nil
	}
	rm, _ := s.cfg.Images.(ImageRemover)
	keep := map[string]bool{} // keys
	if o.KeepStorage > 0 && rm != nil {
		var total int64
		counted := map[string]bool{}
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			if !counted[e.id] {
				counted[e.id] = true
				total += rm.LayerSize(ctx, e.id)
			}
			if total > o.KeepStorage {
				break
			}
			keep[e.key] = true
		}
	}
	var drop []string
	images := map[string]bool{}
	for _, e := range entries {
		if keep[e.key] || (!until.IsZero() && !e.used.Before(until)) {
			continue
		}
		drop = append(drop, e.key)
		images[e.id] = true
	}
	for _, e := range entries {
		if keep[e.key] || (!until.IsZero() && !e.used.Before(until)) {
			delete(images, e.id) // an entry that stays still needs its image
		}
	}
	err = s.cfg.DB.Update(func(tx *bolt.Tx) error {
		for _, k := range drop {
			if err := tx.Bucket(bucketCache).Delete([]byte(k)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketCacheUsed).Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rep, errdefs.System(err)
	}
	sort.Strings(drop)
	rep.CachesDeleted = append(rep.CachesDeleted, drop...)
	if o.KeepStorage == 0 {
		// The trees berth build synced go too (the next build sends its context whole once).
		ids, n := s.synced.prune(until)
		rep.CachesDeleted = append(rep.CachesDeleted, ids...)
		rep.SpaceReclaimed += uint64(n)
	}
	if rm == nil {
		return rep, nil
	}
	// Children first: each pass removes the leaves, which frees their parents for the next one.
	for progress := true; progress; {
		progress = false
		for id := range images {
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			if removed, n := rm.RemoveUnused(ctx, id); removed {
				delete(images, id)
				rep.SpaceReclaimed += uint64(n)
				progress = true
			}
		}
	}
	return rep, nil
}

// cacheEntries lists the cache, least recently used first.
func (s *Service) cacheEntries() ([]cacheEntry, error) {
	var out []cacheEntry
	err := s.cfg.DB.View(func(tx *bolt.Tx) error {
		used := tx.Bucket(bucketCacheUsed)
		return tx.Bucket(bucketCache).ForEach(func(k, v []byte) error {
			e := cacheEntry{key: string(k), id: string(v)}
			if t := used.Get(k); len(t) == 8 {
				e.used = time.Unix(0, int64(binary.BigEndian.Uint64(t)))
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, errdefs.System(err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].used.Before(out[j].used) })
	return out, nil
}
