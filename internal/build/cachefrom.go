package build

import (
	"context"
	"io"
)

// fromCacheSources looks for the step in the --cache-from images, as Docker's legacy builder does: an
// image matches when its history and layers start with the parent's and its next history entry has the
// step's created_by (which, for COPY and ADD, holds the content digest). The step's image is then
// rebuilt from that layer without running anything, or is the source image itself when the step is its
// last. It returns "" when no source matches.
func (b *builder) fromCacheSources(ctx context.Context, st *stage, createdBy string) (string, error) {
	if len(b.cacheFrom) == 0 {
		return "", nil
	}
	var parent Image
	if st.imageID != "" {
		p, err := b.svc.cfg.Images.Get(ctx, st.imageID)
		if err != nil {
			return "", err
		}
		parent = p
	}
	ph, pd := parent.Config.History, parent.Config.RootFS.DiffIDs
	for _, src := range b.cacheFrom {
		h, d := src.Config.History, src.Config.RootFS.DiffIDs
		n := len(ph)
		if len(h) <= n || len(d) < len(pd) || h[n].CreatedBy != createdBy {
			continue
		}
		same := true
		for i := range ph {
			same = same && h[i].CreatedBy == ph[i].CreatedBy && h[i].EmptyLayer == ph[i].EmptyLayer
		}
		for i := range pd {
			same = same && d[i] == pd[i]
		}
		if !same {
			continue
		}
		if len(h) == n+1 {
			return src.ID, nil
		}
		var layer io.Reader
		if !h[n].EmptyLayer {
			if len(d) <= len(pd) {
				continue
			}
			rc, err := b.svc.cfg.Images.OpenLayer(ctx, d[len(pd)].String())
			if err != nil {
				return "", err
			}
			defer rc.Close()
			layer = rc
		}
		return b.svc.cfg.Images.WriteChild(ctx, Child{Parent: st.imageID, Layer: layer, Config: st.config, CreatedBy: createdBy, Created: st.epoch})
	}
	return "", nil
}
