package registry

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// page applies the spec's pagination (?n=&last=) to a sorted list and sets the Link header to the
// next page when one is left.
func page(w http.ResponseWriter, r *http.Request, all []string) ([]string, error) {
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(all, last)
		if i < len(all) && all[i] == last {
			i++
		}
		all = all[i:]
	}
	if nv := q.Get("n"); nv != "" {
		n, err := strconv.Atoi(nv)
		if err != nil || n < 0 {
			return nil, errf(http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
		}
		if n < len(all) {
			all = all[:n]
			if n > 0 {
				next := url.Values{"n": {nv}, "last": {all[n-1]}}
				w.Header().Set("Link", "<"+r.URL.Path+"?"+next.Encode()+`>; rel="next"`)
			}
		}
	}
	return all, nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return nil
}

// catalog serves GET /v2/_catalog.
func (s *server) catalog(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errMethod()
	}
	repos, err := s.store.repositories()
	if err != nil {
		return err
	}
	repos, err = page(w, r, repos)
	if err != nil {
		return err
	}
	return writeJSON(w, r, "application/json", map[string][]string{"repositories": repos})
}

// tagsList serves GET /v2/<name>/tags/list.
func (s *server) tagsList(w http.ResponseWriter, r *http.Request, name string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errMethod()
	}
	if !s.store.repoExists(name) {
		return errf(http.StatusNotFound, codeNameUnknown, "repository name not known to registry").with(map[string]string{"name": name})
	}
	tags, err := s.store.tags(name)
	if err != nil {
		return err
	}
	tags, err = page(w, r, tags)
	if err != nil {
		return err
	}
	return writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, tags})
}

// referrersList serves GET /v2/<name>/referrers/<digest>: an image index of the manifests whose
// subject is digest, optionally only those of one artifactType.
func (s *server) referrersList(w http.ResponseWriter, r *http.Request, name, ref string) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return errMethod()
	}
	subject, err := parseDigest(ref)
	if err != nil {
		return err
	}
	digests, err := s.store.referrers(name, subject)
	if err != nil {
		return err
	}
	filter := r.URL.Query().Get("artifactType")
	descs := []ocispec.Descriptor{}
	for _, d := range digests {
		b, err := os.ReadFile(s.store.blobPath(d))
		if err != nil {
			continue // deleted meanwhile
		}
		m, err := parseManifest(b)
		if err != nil {
			continue
		}
		mt, _ := os.ReadFile(s.store.manifestLink(name, d))
		at := m.ArtifactType
		if at == "" && m.Config != nil {
			at = m.Config.MediaType
		}
		if filter != "" && at != filter {
			continue
		}
		descs = append(descs, ocispec.Descriptor{
			MediaType: string(mt), Digest: d, Size: int64(len(b)), ArtifactType: at, Annotations: m.Annotations,
		})
	}
	sort.Slice(descs, func(i, j int) bool { return descs[i].Digest < descs[j].Digest })
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
	idx.SchemaVersion = 2
	return writeJSON(w, r, ocispec.MediaTypeImageIndex, idx)
}
