package build

import (
	"context"

	"github.com/berth-dev/berth/internal/errdefs"
	bolt "go.etcd.io/bbolt"
)

// ImageRemover deletes an image that nothing needs any more.
type ImageRemover interface {
	// RemoveUnused deletes the image id unless it is tagged, used by a container or the parent of
	// another image, and reports the bytes its own layer freed.
	RemoveUnused(ctx context.Context, id string) (removed bool, reclaimed int64)
}

// PruneReport is what Prune removed.
type PruneReport struct {
	CachesDeleted  []string // cache keys
	SpaceReclaimed uint64
}

// Prune empties the build cache and deletes the step images it held that nothing else needs:
// untagged, unused, and not under another image. Images under a tagged image stay until it goes.
func (s *Service) Prune(ctx context.Context) (PruneReport, error) {
	var rep PruneReport
	images := map[string]bool{}
	err := s.cfg.DB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCache)
		var keys [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			keys = append(keys, append([]byte(nil), k...))
			images[string(v)] = true
			return nil
		}); err != nil {
			return err
		}
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
			rep.CachesDeleted = append(rep.CachesDeleted, string(k))
		}
		return nil
	})
	if err != nil {
		return rep, errdefs.System(err)
	}
	rm, ok := s.cfg.Images.(ImageRemover)
	if !ok {
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
