package registry

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// GCOptions configures GC.
type GCOptions struct {
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
	// DeleteUntagged also removes manifests that no tag reaches (directly, through an index, or as a
	// referrer of a kept manifest) before marking.
	DeleteUntagged bool
	// Out receives one line per removed item and a summary; nil discards.
	Out io.Writer
}

// GCStats is what GC removed (or would remove, in a dry run).
type GCStats struct {
	Manifests int   // manifest revisions removed (DeleteUntagged)
	Blobs     int   // blobs removed from blobs/
	Bytes     int64 // their size
}

// GC removes the blobs no manifest in any repository references (mark and sweep), then the
// repositories' links to blobs that are gone, abandoned uploads and temp files. Run it while no
// server writes to root: an upload committed during the sweep could lose its blob.
func GC(root string, opt GCOptions) (GCStats, error) {
	out := opt.Out
	if out == nil {
		out = io.Discard
	}
	s, err := newStore(root)
	if err != nil {
		return GCStats{}, err
	}
	var stats GCStats
	repos, err := s.repositories()
	if err != nil {
		return stats, err
	}
	marked := map[digest.Digest]bool{}
	for _, name := range repos {
		revs, err := s.revisions(name)
		if err != nil {
			return stats, err
		}
		keep := revs
		if opt.DeleteUntagged {
			keep = s.reachable(name, revs)
			for d := range revs {
				if keep[d] {
					continue
				}
				fmt.Fprintf(out, "%s: untagged manifest %s\n", name, d)
				stats.Manifests++
				if !opt.DryRun {
					if err := s.deleteManifest(name, d); err != nil {
						return stats, err
					}
				}
			}
		}
		for d := range keep {
			marked[d] = true
			if m := s.readManifest(d); m != nil {
				for _, desc := range m.references() {
					marked[desc.Digest] = true
				}
			}
		}
	}
	// Sweep blobs/.
	for _, alg := range []digest.Algorithm{digest.SHA256, digest.SHA384, digest.SHA512} {
		dir := filepath.Join(root, "blobs", string(alg))
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return stats, err
		}
		for _, e := range ents {
			d := digest.NewDigestFromEncoded(alg, e.Name())
			if marked[d] {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			fmt.Fprintf(out, "blob %s (%d bytes)\n", d, info.Size())
			stats.Blobs++
			stats.Bytes += info.Size()
			if !opt.DryRun {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
					return stats, err
				}
			}
		}
	}
	if !opt.DryRun {
		for _, name := range repos {
			s.pruneLinks(name)
			_ = os.RemoveAll(filepath.Join(s.repoDir(name), "_uploads"))
		}
		tmp := filepath.Join(root, "tmp")
		if ents, err := os.ReadDir(tmp); err == nil {
			for _, e := range ents {
				_ = os.RemoveAll(filepath.Join(tmp, e.Name()))
			}
		}
	}
	verb := "removed"
	if opt.DryRun {
		verb = "would remove"
	}
	fmt.Fprintf(out, "%s %d manifests, %d blobs, %d bytes\n", verb, stats.Manifests, stats.Blobs, stats.Bytes)
	return stats, nil
}

// revisions lists a repository's manifest revisions.
func (s *store) revisions(name string) (map[digest.Digest]bool, error) {
	out := map[digest.Digest]bool{}
	base := filepath.Join(s.repoDir(name), "_manifests")
	algs, err := os.ReadDir(base)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return out, nil
		}
		return nil, err
	}
	for _, a := range algs {
		ents, err := os.ReadDir(filepath.Join(base, a.Name()))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name()); d.Validate() == nil {
				out[d] = true
			}
		}
	}
	return out, nil
}

func (s *store) readManifest(d digest.Digest) *manifestDoc {
	b, err := os.ReadFile(s.blobPath(d))
	if err != nil {
		return nil
	}
	m, err := parseManifest(b)
	if err != nil {
		return nil
	}
	return m
}

// reachable is the set of revisions kept with --delete-untagged: the tagged ones, what their indexes
// list, and the referrers of anything kept, to a fixed point.
func (s *store) reachable(name string, revs map[digest.Digest]bool) map[digest.Digest]bool {
	keep := map[digest.Digest]bool{}
	var queue []digest.Digest
	add := func(d digest.Digest) {
		if revs[d] && !keep[d] {
			keep[d] = true
			queue = append(queue, d)
		}
	}
	tags, _ := s.tags(name)
	for _, t := range tags {
		if b, err := os.ReadFile(s.tagPath(name, t)); err == nil {
			add(digest.Digest(strings.TrimSpace(string(b))))
		}
	}
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if m := s.readManifest(d); m != nil {
			for _, c := range m.Manifests {
				add(c.Digest)
			}
		}
		refs, _ := s.referrers(name, d)
		for _, r := range refs {
			add(r)
		}
	}
	return keep
}

// pruneLinks drops a repository's links to blobs that no longer exist.
func (s *store) pruneLinks(name string) {
	base := filepath.Join(s.repoDir(name), "_blobs")
	algs, _ := os.ReadDir(base)
	for _, a := range algs {
		ents, _ := os.ReadDir(filepath.Join(base, a.Name()))
		for _, e := range ents {
			d := digest.NewDigestFromEncoded(digest.Algorithm(a.Name()), e.Name())
			if !exists(s.blobPath(d)) {
				_ = os.Remove(filepath.Join(base, a.Name(), e.Name()))
			}
		}
	}
}
