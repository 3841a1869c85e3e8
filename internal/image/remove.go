package image

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/berth-dev/berth/internal/filterutil"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Remove is `docker rmi` with Docker's rules:
//   - by name: the tag goes; the image goes too when that was its last tag, unless something still
//     needs it (then it stays, untagged, silently). If a container uses the image and this is its only
//     tag, the tag is kept unless force.
//   - by ID: refused when the image has several tags (unless force, which removes them all) or a
//     stopped container uses it (unless force); always refused while a running container uses it or
//     another image is built on it.
//
// Unless noPrune, untagged parent images left unused are removed too. Layers no other image uses are
// deleted and reported as "Deleted: <chain ID>".
func (s *Service) Remove(ctx context.Context, refOrID string, force, noPrune bool) ([]image.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	var (
		id    digest.Digest
		named reference.Named
		refs  []reference.Named // tags and digest references
		// tagRefs are the tags alone: by ID, digest references never stand in the way.
		tagRefs []reference.Named
	)
	if err := s.cfg.DB.View(func(tx *bolt.Tx) error {
		var err error
		id, named, err = resolve(tx, refOrID)
		tagRefs = tagsOf(tx, id)
		refs = append(append([]reference.Named{}, tagRefs...), digestsOf(tx, id)...)
		return err
	}); err != nil {
		return nil, err
	}
	var records []image.DeleteResponse
	defer func() { s.removeEvents(id, records) }()
	quiet := false
	if named != nil {
		running, stopped := s.containersUsing(id)
		if users := append(running, stopped...); len(users) > 0 && !force && len(refs) == 1 {
			return nil, errdefs.Conflict(fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
				refOrID, shortID(users[0]), shortID(id.String())))
		}
		if err := s.untag(named); err != nil {
			return nil, err
		}
		records = append(records, image.DeleteResponse{Untagged: reference.FamiliarString(named)})
		left, err := s.dropOrphanDigests(named, refs)
		if err != nil {
			return records, err
		}
		for _, d := range left.dropped {
			records = append(records, image.DeleteResponse{Untagged: reference.FamiliarString(d)})
		}
		if left.remaining > 0 {
			return records, nil
		}
		quiet = true
	} else if len(tagRefs) == 1 {
		// Check before untagging, so a refused delete leaves the tag in place.
		if c := s.checkConflict(id, force, true); c != nil {
			return nil, errdefs.Conflict(c)
		}
		if err := s.untag(tagRefs[0]); err != nil {
			return nil, err
		}
		records = append(records, image.DeleteResponse{Untagged: reference.FamiliarString(tagRefs[0])})
	}
	var reclaimed int64
	if err := s.deleteImage(ctx, id, &records, &reclaimed, force, !noPrune, quiet); err != nil {
		return records, err
	}
	return records, nil
}

type leftRefs struct {
	dropped   []reference.Named
	remaining int
}

// dropOrphanDigests is Docker's rule after a tag goes: the repository's digest references go too when
// no tag of that repository is left on the image. It reports those and how many references remain.
func (s *Service) dropOrphanDigests(removed reference.Named, refs []reference.Named) (leftRefs, error) {
	var out leftRefs
	repo := reference.TrimNamed(removed).String()
	tagLeft := false
	for _, r := range refs {
		if _, dig := r.(reference.Canonical); !dig && r.String() != removed.String() && reference.TrimNamed(r).String() == repo {
			tagLeft = true
		}
	}
	for _, r := range refs {
		if r.String() == removed.String() {
			continue
		}
		if _, dig := r.(reference.Canonical); dig && !tagLeft && reference.TrimNamed(r).String() == repo {
			if _, isTag := removed.(reference.Canonical); !isTag {
				if err := s.untag(r); err != nil {
					return out, err
				}
				out.dropped = append(out.dropped, r)
				continue
			}
		}
		out.remaining++
	}
	return out, nil
}

func (s *Service) untag(n reference.Named) error {
	return s.cfg.DB.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketDigests).Delete([]byte(n.String())); err != nil {
			return err
		}
		return tx.Bucket(bucketTags).Delete([]byte(n.String()))
	})
}

// conflict is Docker's image delete conflict; hard ones cannot be forced.
type conflict struct {
	id   digest.Digest
	hard bool
	used bool // a container is the reason
	msg  string
}

func (c *conflict) Error() string {
	how := "must be forced"
	if c.hard {
		how = "cannot be forced"
	}
	return fmt.Sprintf("conflict: unable to delete %s (%s) - %s", shortID(c.id.String()), how, c.msg)
}

func (s *Service) checkConflict(id digest.Digest, force, ignoreTags bool) *conflict {
	var tags int
	child := false
	s.cfg.DB.View(func(tx *bolt.Tx) error {
		tags = len(tagsOf(tx, id))
		return tx.Bucket(bucketImages).ForEach(func(_, v []byte) error {
			var r record
			if json.Unmarshal(v, &r) == nil && r.Parent == id {
				child = true
			}
			return nil
		})
	})
	if child {
		return &conflict{id: id, hard: true, msg: "image has dependent child images"}
	}
	running, stopped := s.containersUsing(id)
	if len(running) > 0 {
		return &conflict{id: id, hard: true, used: true, msg: "image is being used by running container " + shortID(running[0])}
	}
	if force {
		return nil
	}
	if tags > 0 && !ignoreTags {
		return &conflict{id: id, msg: "image is referenced in multiple repositories"}
	}
	if len(stopped) > 0 {
		return &conflict{id: id, used: true, msg: "image is being used by stopped container " + shortID(stopped[0])}
	}
	return nil
}

// deleteImage removes image id with its remaining tags and unused layers, appending what it did to
// records. Quiet swallows conflicts (the image just stays) unless the image is dangling and unused.
// Caller holds s.mu.
func (s *Service) deleteImage(ctx context.Context, id digest.Digest, records *[]image.DeleteResponse, reclaimed *int64, force, prune, quiet bool) error {
	if c := s.checkConflict(id, force, false); c != nil {
		if quiet && (!s.dangling(id) || c.used) {
			return nil
		}
		return errdefs.Conflict(c)
	}
	var rec record
	var untagged []reference.Named
	var stillUsed map[string]bool
	var layerUsed map[digest.Digest]bool
	// Record and tags go in one transaction: from here on nothing names the layers.
	err := s.cfg.DB.Update(func(tx *bolt.Tx) error {
		var err error
		if rec, err = getRecord(tx, id); err != nil {
			return err
		}
		untagged = tagsOf(tx, id)
		for _, t := range untagged {
			if err := tx.Bucket(bucketTags).Delete([]byte(t.String())); err != nil {
				return err
			}
		}
		for _, d := range digestsOf(tx, id) {
			if err := tx.Bucket(bucketDigests).Delete([]byte(d.String())); err != nil {
				return err
			}
			untagged = append(untagged, d)
		}
		if err := tx.Bucket(bucketImages).Delete([]byte(id)); err != nil {
			return err
		}
		stillUsed, layerUsed = map[string]bool{}, map[digest.Digest]bool{}
		return tx.Bucket(bucketImages).ForEach(func(_, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			for _, c := range r.chainIDs() {
				stillUsed[c] = true
			}
			for _, d := range r.DiffIDs {
				layerUsed[d] = true
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, t := range untagged {
		*records = append(*records, image.DeleteResponse{Untagged: reference.FamiliarString(t)})
	}
	*records = append(*records, image.DeleteResponse{Deleted: id.String()})
	if s.cfg.Content.Delete(id) == nil {
		*reclaimed += rec.ConfigSize
	}
	chains := rec.chainIDs()
	for i := len(chains) - 1; i >= 0; i-- {
		if stillUsed[chains[i]] {
			break // every layer below is used too
		}
		if err := s.cfg.Snapshotter.Remove(ctx, chains[i]); err != nil {
			if errdefs.IsNotFound(err) {
				continue
			}
			break // a container's layer sits on it: it and everything below stay
		}
		*records = append(*records, image.DeleteResponse{Deleted: chains[i]})
		if !layerUsed[rec.DiffIDs[i]] && s.cfg.Content.Delete(rec.DiffIDs[i]) == nil {
			*reclaimed += rec.LayerSizes[i]
		}
	}
	if !prune || rec.Parent == "" {
		return nil
	}
	if err := s.cfg.DB.View(func(tx *bolt.Tx) error { _, err := getRecord(tx, rec.Parent); return err }); err != nil {
		return nil
	}
	return s.deleteImage(ctx, rec.Parent, records, reclaimed, false, true, true)
}

func (s *Service) dangling(id digest.Digest) bool {
	n := 0
	s.cfg.DB.View(func(tx *bolt.Tx) error { n = len(tagsOf(tx, id)); return nil })
	return n == 0
}

var pruneFilters = map[string]bool{"dangling": true, "label": true, "label!": true, "until": true}

// Prune is `docker image prune`: dangling images, or with dangling=false every image no container
// uses. Images used by containers or with child images are never removed.
func (s *Service) Prune(ctx context.Context, f filters.Args) (image.PruneReport, error) {
	var report image.PruneReport
	if err := f.Validate(pruneFilters); err != nil {
		return report, errdefs.InvalidParameter(err)
	}
	danglingOnly := true
	if v, present, err := danglingFilter(f); err != nil {
		return report, err
	} else if present {
		danglingOnly = v
	}
	until, err := filterutil.Until(f)
	if err != nil {
		return report, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var entries []*entry
	if err := s.cfg.DB.View(func(tx *bolt.Tx) error {
		var err error
		entries, err = s.entries(tx)
		return err
	}); err != nil {
		return report, err
	}
	var reclaimed int64
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return report, err
		}
		if danglingOnly && len(e.tags) > 0 || e.parent {
			continue
		}
		if !until.IsZero() && !e.rec.Created.Before(until) {
			continue
		}
		if running, stopped := s.containersUsing(e.id); len(running)+len(stopped) > 0 {
			continue
		}
		if f.Contains("label") || f.Contains("label!") {
			cfg, _, err := s.readConfig(e.id)
			if err != nil {
				continue
			}
			if !f.MatchKVList("label", cfg.Config.Labels) {
				continue
			}
			if f.Contains("label!") && matchAnyLabel(f.Get("label!"), cfg.Config.Labels) {
				continue
			}
		}
		if err := s.deleteImage(ctx, e.id, &report.ImagesDeleted, &reclaimed, true, true, false); err != nil {
			continue
		}
	}
	report.SpaceReclaimed = uint64(reclaimed)
	return report, nil
}

func matchAnyLabel(vals []string, labels map[string]string) bool {
	for _, v := range vals {
		if filters.NewArgs(filters.Arg("label", v)).MatchKVList("label", labels) {
			return true
		}
	}
	return false
}
