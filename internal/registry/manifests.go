package registry

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Manifest media types the server knows the structure of.
const (
	mtOCIManifest    = ocispec.MediaTypeImageManifest
	mtOCIIndex       = ocispec.MediaTypeImageIndex
	mtDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mtDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// manifestDoc holds the fields of every manifest kind the server looks at: image manifests (config,
// layers), indexes and manifest lists (manifests), and OCI 1.1's subject and artifactType.
type manifestDoc struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType,omitempty"`
	ArtifactType  string               `json:"artifactType,omitempty"`
	Config        *ocispec.Descriptor  `json:"config,omitempty"`
	Layers        []ocispec.Descriptor `json:"layers,omitempty"`
	Manifests     []ocispec.Descriptor `json:"manifests,omitempty"`
	Blobs         []ocispec.Descriptor `json:"blobs,omitempty"`
	Subject       *ocispec.Descriptor  `json:"subject,omitempty"`
	Annotations   map[string]string    `json:"annotations,omitempty"`
}

func parseManifest(b []byte) (*manifestDoc, error) {
	var m manifestDoc
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// references lists every descriptor a manifest points at (for validation and GC).
func (m *manifestDoc) references() []ocispec.Descriptor {
	var out []ocispec.Descriptor
	if m.Config != nil {
		out = append(out, *m.Config)
	}
	out = append(out, m.Layers...)
	out = append(out, m.Blobs...)
	return out
}

// foreign layers are not pushed to the registry (Windows base layers, OCI non-distributable); the
// registry does not require them.
func foreign(mt string) bool {
	return strings.Contains(mt, "nondistributable") || strings.Contains(mt, "foreign")
}

func errManifestInvalid(msg string) *regError {
	return errf(http.StatusBadRequest, codeManifestInvalid, "manifest invalid: "+msg)
}

// manifest serves GET/HEAD/PUT/DELETE /v2/<name>/manifests/<reference>.
func (s *server) manifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	if _, err := digest.Parse(ref); err != nil && !tagRE.MatchString(ref) {
		if strings.Contains(ref, ":") {
			return errf(http.StatusBadRequest, codeDigestInvalid, "invalid digest").with(map[string]string{"digest": ref})
		}
		return errf(http.StatusBadRequest, codeTagInvalid, "invalid tag").with(map[string]string{"tag": ref})
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.getManifest(w, r, name, ref)
	case http.MethodPut:
		return s.putManifest(w, r, name, ref)
	case http.MethodDelete:
		return s.deleteManifest(w, r, name, ref)
	}
	return errMethod()
}

func (s *server) getManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	d, mt, err := s.store.resolve(name, ref)
	if err != nil {
		return err
	}
	if !accepts(r, mt) {
		// What docker's registry does when a client cannot read the stored kind: the manifest does not
		// exist for that client (there is no conversion to offer).
		return errf(http.StatusNotFound, codeManifestUnknown, "manifest of type "+mt+" is not accepted by the client").
			with(map[string]string{"reference": ref})
	}
	f, err := os.Open(s.store.blobPath(d))
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", mt)
	h.Set("Docker-Content-Digest", d.String())
	h.Set("ETag", `"`+d.String()+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

// accepts tells whether the request's Accept header allows media type mt. No Accept header, a
// wildcard, or an Accept that names no manifest type at all (plain HTTP clients) accept anything.
func accepts(r *http.Request, mt string) bool {
	values := r.Header.Values("Accept")
	if len(values) == 0 {
		return true
	}
	namesManifest := false
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			t, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if t == mt || t == "*/*" {
				return true
			}
			if strings.HasPrefix(t, "application/vnd.oci.") || strings.HasPrefix(t, "application/vnd.docker.") {
				namesManifest = true
			}
		}
	}
	return !namesManifest
}

func (s *server) putManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		return errManifestInvalid("reading body: " + err.Error())
	}
	if len(body) > maxManifestSize {
		return errf(http.StatusRequestEntityTooLarge, codeSizeInvalid, "manifest larger than 4 MiB")
	}
	var d digest.Digest
	var tags []string
	if rd, err := digest.Parse(ref); err == nil {
		if !rd.Algorithm().Available() {
			return errf(http.StatusBadRequest, codeDigestInvalid, "unsupported digest algorithm")
		}
		if got := rd.Algorithm().FromBytes(body); got != rd {
			return errDigestMismatch(rd, got)
		}
		d = rd
	} else {
		d = digest.SHA256.FromBytes(body)
		tags = append(tags, ref)
	}
	// OCI 1.2: tags as parameters of a push by digest, echoed in OCI-Tag.
	var tagParams []string
	for _, t := range r.URL.Query()["tag"] {
		if !tagRE.MatchString(t) {
			return errf(http.StatusBadRequest, codeTagInvalid, "invalid tag").with(map[string]string{"tag": t})
		}
		tagParams = append(tagParams, t)
	}
	tags = append(tags, tagParams...)

	m, err := parseManifest(body)
	if err != nil {
		return errManifestInvalid(err.Error())
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "" {
		mt = m.MediaType
	}
	if mt == "" {
		return errManifestInvalid("no media type (Content-Type or mediaType)")
	}
	if m.MediaType != "" && m.MediaType != mt {
		return errManifestInvalid("mediaType " + m.MediaType + " does not match Content-Type " + mt)
	}
	if m.SchemaVersion != 2 && (mt == mtOCIManifest || mt == mtOCIIndex || mt == mtDockerManifest || mt == mtDockerList) {
		return errManifestInvalid("schemaVersion must be 2")
	}
	if err := s.checkReferences(name, mt, m); err != nil {
		return err
	}
	var subject digest.Digest
	if m.Subject != nil {
		if m.Subject.Digest.Validate() != nil {
			return errManifestInvalid("invalid subject digest")
		}
		subject = m.Subject.Digest
	}
	if err := s.store.putManifest(name, d, mt, body, tags, subject); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	if subject != "" {
		h.Set("OCI-Subject", subject.String())
	}
	if len(tagParams) > 0 {
		h.Set("OCI-Tag", strings.Join(tagParams, ","))
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// checkReferences makes sure an image manifest's config and layers are in the repository
// (MANIFEST_BLOB_UNKNOWN otherwise). Indexes may name manifests that are not there (sparse indexes,
// as for a multi-platform image mirrored for one platform), which the spec allows.
func (s *server) checkReferences(name, mt string, m *manifestDoc) error {
	var missing []string
	for _, desc := range m.references() {
		if err := desc.Digest.Validate(); err != nil {
			return errManifestInvalid("invalid digest " + string(desc.Digest))
		}
		if foreign(desc.MediaType) {
			continue
		}
		if !s.store.hasBlob(name, desc.Digest) {
			missing = append(missing, desc.Digest.String())
		}
	}
	for _, desc := range m.Manifests {
		if err := desc.Digest.Validate(); err != nil {
			return errManifestInvalid("invalid digest " + string(desc.Digest))
		}
	}
	if len(missing) > 0 {
		return errf(http.StatusBadRequest, codeManifestBlobUnknown, "blob unknown to registry").
			with(map[string]string{"digest": missing[0]})
	}
	return nil
}

func (s *server) deleteManifest(w http.ResponseWriter, r *http.Request, name, ref string) error {
	d, err := digest.Parse(ref)
	if err != nil {
		// A tag: only the tag goes, the manifest stays reachable by digest.
		if err := s.store.deleteTag(name, ref); err != nil {
			return err
		}
	} else if err := s.store.deleteManifest(name, d); err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
