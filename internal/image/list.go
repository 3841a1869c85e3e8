package image

import (
	"context"
	"encoding/json"
	"github.com/berth-dev/berth/internal/filterutil"
	"path"
	"sort"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/storage"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// entry is one image with what listing and pruning need, read in one transaction.
type entry struct {
	id      digest.Digest
	rec     record
	tags    []reference.Named
	digests []reference.Named
	parent  bool // some other image names this one as its parent
}

func (s *Service) entries(tx *bolt.Tx) ([]*entry, error) {
	byID := map[digest.Digest]*entry{}
	var out []*entry
	err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		e := &entry{id: digest.Digest(k)}
		if err := json.Unmarshal(v, &e.rec); err != nil {
			return err
		}
		byID[e.id] = e
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, errdefs.System(err)
	}
	tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		if e := byID[digest.Digest(v)]; e != nil {
			if n, err := reference.ParseNormalizedNamed(string(k)); err == nil {
				e.tags = append(e.tags, n)
			}
		}
		return nil
	})
	tx.Bucket(bucketDigests).ForEach(func(k, v []byte) error {
		if e := byID[digest.Digest(v)]; e != nil {
			if n, err := reference.ParseNormalizedNamed(string(k)); err == nil {
				e.digests = append(e.digests, n)
			}
		}
		return nil
	})
	for _, e := range out {
		sort.Slice(e.digests, func(i, j int) bool { return e.digests[i].String() < e.digests[j].String() })
		sort.Slice(e.tags, func(i, j int) bool { return e.tags[i].String() < e.tags[j].String() })
		if p := byID[e.rec.Parent]; p != nil {
			p.parent = true
		}
	}
	return out, nil
}

var listFilters = map[string]bool{"dangling": true, "label": true, "reference": true, "before": true, "since": true, "until": true}

// List is `docker images`. Without all, untagged images that are parents of other images
// (intermediate build layers) are hidden. Filters: dangling, label, reference, before, since, until.
func (s *Service) List(ctx context.Context, all bool, f filters.Args) ([]image.Summary, error) {
	if err := f.Validate(listFilters); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	var out []image.Summary
	err := s.cfg.DB.View(func(tx *bolt.Tx) error {
		entries, err := s.entries(tx)
		if err != nil {
			return err
		}
		var before, since *time.Time
		for key, dst := range map[string]**time.Time{"before": &before, "since": &since} {
			for _, ref := range f.Get(key) {
				id, _, err := resolve(tx, ref)
				if err != nil {
					return err
				}
				r, err := getRecord(tx, id)
				if err != nil {
					return err
				}
				*dst = &r.Created
			}
		}
		until, err := filterutil.Until(f)
		if err != nil {
			return err
		}
		dangling, hasDangling, err := danglingFilter(f)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if !all && len(e.tags) == 0 && e.parent && !hasDangling {
				continue
			}
			if hasDangling && dangling != (len(e.tags) == 0) {
				continue
			}
			if before != nil && !e.rec.Created.Before(*before) || since != nil && !e.rec.Created.After(*since) {
				continue
			}
			if !until.IsZero() && !e.rec.Created.Before(until) {
				continue
			}
			if f.Contains("reference") && !matchesReference(f.Get("reference"), e.tags) {
				continue
			}
			cfg, _, err := s.readConfig(e.id)
			if err != nil {
				return err
			}
			if !f.MatchKVList("label", cfg.Config.Labels) {
				continue
			}
			out = append(out, image.Summary{
				ID:          e.id.String(),
				ParentID:    parentString(e.rec.Parent),
				RepoTags:    familiar(e.tags),
				RepoDigests: familiar(e.digests),
				Created:     e.rec.Created.Unix(),
				Size:        e.rec.size(),
				SharedSize:  -1,
				Containers:  -1,
				Labels:      cfg.Config.Labels,
			})
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out, err
}

func parentString(p digest.Digest) string {
	if p == "" {
		return ""
	}
	return p.String()
}

func danglingFilter(f filters.Args) (value, present bool, err error) {
	if !f.Contains("dangling") {
		return false, false, nil
	}
	v, err := f.GetBoolOrDefault("dangling", false)
	if err != nil {
		return false, false, errdefs.InvalidParameter(err)
	}
	return v, true, nil
}

// matchesReference reports whether any tag matches any pattern, as Docker matches `reference=`:
// against the familiar name, or the familiar name:tag.
func matchesReference(patterns []string, tags []reference.Named) bool {
	for _, p := range patterns {
		for _, t := range tags {
			for _, s := range []string{reference.FamiliarName(t), reference.FamiliarString(t)} {
				if ok, _ := path.Match(p, s); ok {
					return true
				}
			}
		}
	}
	return false
}

// History is `docker history`: newest step first. The top step carries the image's ID and tags;
// lower steps show "<missing>" because Berth keeps no per-step image for them.
func (s *Service) History(ctx context.Context, ref string) ([]image.HistoryResponseItem, error) {
	img, err := s.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	var sizes []int64
	s.cfg.DB.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, img.ID)
		sizes = r.LayerSizes
		return err
	})
	hist := img.Config.History
	if len(hist) == 0 {
		for range img.DiffIDs {
			hist = append(hist, ocispec.History{})
		}
	}
	var out []image.HistoryResponseItem
	layer := 0
	for _, h := range hist {
		item := image.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer < len(sizes) {
			item.Size = sizes[layer]
			layer++
		}
		out = append(out, item)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = img.ID.String()
		out[0].Tags = img.RepoTags
	}
	return out, nil
}

// Inspect is `docker image inspect`.
func (s *Service) Inspect(ctx context.Context, ref string) (*image.InspectResponse, error) {
	var (
		img *Image
		raw rawConfig
	)
	err := s.cfg.DB.View(func(tx *bolt.Tx) error {
		id, _, err := resolve(tx, ref)
		if err != nil {
			return err
		}
		if img, err = s.image(tx, id); err != nil {
			return err
		}
		_, raw, err = s.readConfig(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	layers := make([]string, len(img.DiffIDs))
	for i, d := range img.DiffIDs {
		layers[i] = d.String()
	}
	resp := &image.InspectResponse{
		ID:            img.ID.String(),
		RepoTags:      img.RepoTags,
		RepoDigests:   img.RepoDigests,
		Parent:        parentString(img.Parent),
		Comment:       raw.Comment,
		DockerVersion: raw.DockerVersion,
		Author:        img.Config.Author,
		Config:        &img.Config.Config,
		Architecture:  img.Config.Architecture,
		Variant:       img.Config.Variant,
		Os:            img.Config.OS,
		OsVersion:     img.Config.OSVersion,
		Size:          img.Size,
		GraphDriver:   storage.DriverData{Name: s.cfg.Snapshotter.Name(), Data: map[string]string{}},
		RootFS:        image.RootFS{Type: "layers", Layers: layers},
	}
	if img.Config.Created != nil {
		resp.Created = img.Config.Created.UTC().Format(time.RFC3339Nano)
	}
	if resp.RepoTags == nil {
		resp.RepoTags = []string{}
	}
	return resp, nil
}
