package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

type harness struct {
	t    *testing.T
	srv  *httptest.Server
	root string
	user string // basic credentials sent with every request when set
	pass string
	tok  string // bearer token sent when set
}

func newHarness(t *testing.T, mutate func(*Config)) *harness {
	t.Helper()
	root := t.TempDir()
	cfg := Config{Root: root}
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, root: root}
}

func (h *harness) do(method, path string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	h.t.Helper()
	url := path
	if strings.HasPrefix(path, "/") {
		url = h.srv.URL + path
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if h.user != "" {
		req.SetBasicAuth(h.user, h.pass)
	}
	if h.tok != "" {
		req.Header.Set("Authorization", "Bearer "+h.tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// expect checks a response's status and, for errors, the spec error code.
func expect(t *testing.T, resp *http.Response, body []byte, status int, code string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, body)
	}
	if code == "" {
		return
	}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil || len(eb.Errors) == 0 {
		t.Fatalf("%s %s: no error body: %s", resp.Request.Method, resp.Request.URL.Path, body)
	}
	if eb.Errors[0].Code != code {
		t.Fatalf("%s %s: code %s, want %s", resp.Request.Method, resp.Request.URL.Path, eb.Errors[0].Code, code)
	}
}

func (h *harness) pushBlob(repo string, data []byte) digest.Digest {
	h.t.Helper()
	d := digest.FromBytes(data)
	resp, b := h.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), nil, data)
	expect(h.t, resp, b, http.StatusCreated, "")
	return d
}

func (h *harness) pushManifest(repo, ref, mt string, body []byte) *http.Response {
	h.t.Helper()
	resp, b := h.do("PUT", "/v2/"+repo+"/manifests/"+ref, map[string]string{"Content-Type": mt}, body)
	expect(h.t, resp, b, http.StatusCreated, "")
	return resp
}

func imageManifest(t *testing.T, config, layer digest.Digest, cfgSize, layerSize int, extra string) []byte {
	t.Helper()
	return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]%s}`,
		mtOCIManifest, config, cfgSize, layer, layerSize, extra))
}

// pushImage pushes a config, a layer and a manifest tagged tag; it returns the manifest digest and
// the blob digests.
func (h *harness) pushImage(repo, tag, seed string) (digest.Digest, []digest.Digest) {
	cfg := []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`)
	layer := []byte("layer-" + seed)
	cd, ld := h.pushBlob(repo, cfg), h.pushBlob(repo, layer)
	m := imageManifest(h.t, cd, ld, len(cfg), len(layer), "")
	h.pushManifest(repo, tag, mtOCIManifest, m)
	return digest.FromBytes(m), []digest.Digest{cd, ld}
}

func TestPingHeaders(t *testing.T) {
	h := newHarness(t, nil)
	resp, b := h.do("GET", "/v2/", nil, nil)
	expect(t, resp, b, 200, "")
	if v := resp.Header.Get("Docker-Distribution-API-Version"); v != "registry/2.0" {
		t.Fatalf("Docker-Distribution-API-Version = %q", v)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t, nil)
	data := []byte("hello blob")
	wrong := digest.FromString("something else")
	sha512 := digest.SHA512.FromBytes(data)
	h.pushBlob("a/b", []byte("exists"))

	// A chunked upload whose second chunk claims the wrong offset.
	resp, _ := h.do("POST", "/v2/a/b/blobs/uploads/", nil, nil)
	loc := resp.Header.Get("Location")
	resp, b := h.do("PATCH", loc, map[string]string{"Content-Range": "0-4"}, data[:5])
	expect(t, resp, b, http.StatusAccepted, "")
	if r := resp.Header.Get("Range"); r != "0-4" {
		t.Fatalf("Range after first chunk = %q", r)
	}
	resp, b = h.do("PATCH", loc, map[string]string{"Content-Range": "6-9"}, data[6:])
	expect(t, resp, b, http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid)
	// The upload is still usable: status says 5 bytes, the right chunk and PUT complete it.
	resp, b = h.do("GET", loc, nil, nil)
	expect(t, resp, b, http.StatusNoContent, "")
	if r := resp.Header.Get("Range"); r != "0-4" {
		t.Fatalf("Range from status = %q", r)
	}
	resp, b = h.do("PATCH", loc, map[string]string{"Content-Range": "5-9"}, data[5:])
	expect(t, resp, b, http.StatusAccepted, "")
	resp, b = h.do("PUT", loc+"?digest="+sha512.String(), nil, nil)
	expect(t, resp, b, http.StatusCreated, "")
	if resp.Header.Get("Docker-Content-Digest") != sha512.String() {
		t.Fatalf("Docker-Content-Digest = %q", resp.Header.Get("Docker-Content-Digest"))
	}
	resp, b = h.do("GET", "/v2/a/b/blobs/"+sha512.String(), map[string]string{"Range": "bytes=6-9"}, nil)
	expect(t, resp, b, http.StatusPartialContent, "")
	if string(b) != "blob" {
		t.Fatalf("range GET = %q", b)
	}

	cases := []struct {
		name, method, path string
		hdr                map[string]string
		body               []byte
		status             int
		code               string
	}{
		{"monolithic upload with the wrong digest", "POST", "/v2/a/b/blobs/uploads/?digest=" + wrong.String(), nil, data, 400, codeDigestInvalid},
		{"malformed digest", "POST", "/v2/a/b/blobs/uploads/?digest=sha256:nothex", nil, data, 400, codeDigestInvalid},
		{"manifest digest mismatch", "PUT", "/v2/a/b/manifests/" + wrong.String(), map[string]string{"Content-Type": mtOCIManifest},
			imageManifest(t, digest.FromString("x"), digest.FromString("y"), 1, 1, ""), 400, codeDigestInvalid},
		{"manifest referencing a missing blob", "PUT", "/v2/a/b/manifests/v1", map[string]string{"Content-Type": mtOCIManifest},
			imageManifest(t, digest.FromString("x"), digest.FromString("y"), 1, 1, ""), 400, codeManifestBlobUnknown},
		{"manifest that is not JSON", "PUT", "/v2/a/b/manifests/v1", map[string]string{"Content-Type": mtOCIManifest}, []byte("{"), 400, codeManifestInvalid},
		{"manifest over 4 MiB", "PUT", "/v2/a/b/manifests/v1", map[string]string{"Content-Type": mtOCIManifest}, bytes.Repeat([]byte(" "), maxManifestSize+1), 413, codeSizeInvalid},
		{"unknown blob", "GET", "/v2/a/b/blobs/" + wrong.String(), nil, nil, 404, codeBlobUnknown},
		{"blob of another repository", "HEAD", "/v2/c/d/blobs/" + digest.FromString("exists").String(), nil, nil, 404, ""},
		{"unknown tag", "GET", "/v2/a/b/manifests/nope", nil, nil, 404, codeManifestUnknown},
		{"unknown repository tags", "GET", "/v2/no/such/tags/list", nil, nil, 404, codeNameUnknown},
		{"invalid name", "GET", "/v2/UPPER/tags/list", nil, nil, 400, codeNameInvalid},
		{"unknown upload", "GET", "/v2/a/b/blobs/uploads/0123456789abcdef0123456789abcdef", nil, nil, 404, codeBlobUploadUnknown},
		{"delete unknown manifest", "DELETE", "/v2/a/b/manifests/" + wrong.String(), nil, nil, 404, codeManifestUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := h.do(tc.method, tc.path, tc.hdr, tc.body)
			expect(t, resp, b, tc.status, tc.code)
		})
	}
	// Nothing of the failed uploads is visible, and no temp file is left behind.
	if ents, _ := os.ReadDir(filepath.Join(h.root, "tmp")); len(ents) != 0 {
		t.Fatalf("tmp not empty: %v", ents)
	}
}

func TestManifestsTagsReferrers(t *testing.T) {
	h := newHarness(t, nil)
	md, _ := h.pushImage("r", "v1", "one")
	h.pushImage("r", "v2", "two")
	h.pushImage("r", "v3", "three")

	// Content negotiation: the stored type comes back; a client that only takes Docker types does
	// not get an OCI manifest.
	resp, b := h.do("GET", "/v2/r/manifests/v1", map[string]string{"Accept": mtOCIManifest + ", " + mtOCIIndex}, nil)
	expect(t, resp, b, 200, "")
	if resp.Header.Get("Content-Type") != mtOCIManifest || resp.Header.Get("Docker-Content-Digest") != md.String() || digest.FromBytes(b) != md {
		t.Fatalf("GET manifest: %v", resp.Header)
	}
	resp, b = h.do("GET", "/v2/r/manifests/v1", map[string]string{"Accept": mtDockerManifest}, nil)
	expect(t, resp, b, 404, codeManifestUnknown)

	// Pagination.
	resp, b = h.do("GET", "/v2/r/tags/list?n=2", nil, nil)
	expect(t, resp, b, 200, "")
	if string(b) != `{"name":"r","tags":["v1","v2"]}` || resp.Header.Get("Link") != `</v2/r/tags/list?last=v2&n=2>; rel="next"` {
		t.Fatalf("page 1: %s Link=%q", b, resp.Header.Get("Link"))
	}
	resp, b = h.do("GET", "/v2/r/tags/list?n=2&last=v2", nil, nil)
	if string(b) != `{"name":"r","tags":["v3"]}` || resp.Header.Get("Link") != "" {
		t.Fatalf("page 2: %s Link=%q", b, resp.Header.Get("Link"))
	}
	h.pushImage("other/repo", "latest", "x")
	resp, b = h.do("GET", "/v2/_catalog?n=1", nil, nil)
	if string(b) != `{"repositories":["other/repo"]}` || !strings.Contains(resp.Header.Get("Link"), "last=other%2Frepo") {
		t.Fatalf("catalog: %s Link=%q", b, resp.Header.Get("Link"))
	}

	// A referrer: an artifact whose subject is v1.
	empty := h.pushBlob("r", []byte("{}"))
	art := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"%s","artifactType":"application/vnd.example.sbom","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[],"subject":{"mediaType":"%s","digest":"%s","size":1}}`,
		mtOCIManifest, empty, mtOCIManifest, md))
	ad := digest.FromBytes(art)
	resp = h.pushManifest("r", ad.String(), mtOCIManifest, art)
	if resp.Header.Get("OCI-Subject") != md.String() {
		t.Fatalf("OCI-Subject = %q", resp.Header.Get("OCI-Subject"))
	}
	for _, filter := range []string{"", "?artifactType=application/vnd.example.sbom", "?artifactType=other"} {
		resp, b = h.do("GET", "/v2/r/referrers/"+md.String()+filter, nil, nil)
		expect(t, resp, b, 200, "")
		var idx struct {
			Manifests []struct {
				Digest       digest.Digest
				ArtifactType string
			}
		}
		_ = json.Unmarshal(b, &idx)
		want := 1
		if filter == "?artifactType=other" {
			want = 0
		}
		if len(idx.Manifests) != want || want == 1 && (idx.Manifests[0].Digest != ad || idx.Manifests[0].ArtifactType != "application/vnd.example.sbom") {
			t.Fatalf("referrers%s: %s", filter, b)
		}
		if (filter != "") != (resp.Header.Get("OCI-Filters-Applied") == "artifactType") {
			t.Fatalf("OCI-Filters-Applied = %q for %q", resp.Header.Get("OCI-Filters-Applied"), filter)
		}
	}
	// Deleting the artifact removes it from the referrers; deleting a tag keeps the manifest.
	resp, b = h.do("DELETE", "/v2/r/manifests/"+ad.String(), nil, nil)
	expect(t, resp, b, 202, "")
	_, b = h.do("GET", "/v2/r/referrers/"+md.String(), nil, nil)
	if strings.Contains(string(b), ad.String()) {
		t.Fatalf("deleted referrer still listed: %s", b)
	}
	resp, b = h.do("DELETE", "/v2/r/manifests/v1", nil, nil)
	expect(t, resp, b, 202, "")
	resp, b = h.do("GET", "/v2/r/manifests/v1", nil, nil)
	expect(t, resp, b, 404, codeManifestUnknown)
	resp, b = h.do("HEAD", "/v2/r/manifests/"+md.String(), nil, nil)
	expect(t, resp, b, 200, "")
}

func TestReadOnly(t *testing.T) {
	h := newHarness(t, nil)
	md, blobs := h.pushImage("r", "v1", "ro")
	ro, err := New(Config{Root: h.root, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Config.Handler = ro
	for _, req := range []struct{ method, path string }{
		{"POST", "/v2/r/blobs/uploads/"},
		{"PUT", "/v2/r/manifests/v2"},
		{"DELETE", "/v2/r/manifests/" + md.String()},
		{"DELETE", "/v2/r/blobs/" + blobs[0].String()},
	} {
		resp, b := h.do(req.method, req.path, nil, nil)
		expect(t, resp, b, http.StatusMethodNotAllowed, codeUnsupported)
	}
	resp, b := h.do("GET", "/v2/r/manifests/v1", nil, nil)
	expect(t, resp, b, 200, "")
}

func writeHtpasswd(t *testing.T, user, pass string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, []byte("# users\n"+user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBasicAuth(t *testing.T) {
	file := writeHtpasswd(t, "alice", "s3cret")
	h := newHarness(t, func(c *Config) {
		a, err := NewAuth(AuthConfig{Htpasswd: file, Mode: AuthBasic})
		if err != nil {
			t.Fatal(err)
		}
		c.Auth = a
	})
	resp, b := h.do("GET", "/v2/", nil, nil)
	expect(t, resp, b, 401, codeUnauthorized)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("challenge %q", resp.Header.Get("WWW-Authenticate"))
	}
	h.user, h.pass = "alice", "wrong"
	resp, b = h.do("GET", "/v2/", nil, nil)
	expect(t, resp, b, 401, codeUnauthorized)
	h.pass = "s3cret"
	h.pushImage("r", "v1", "auth")
	resp, b = h.do("GET", "/v2/r/manifests/v1", nil, nil)
	expect(t, resp, b, 200, "")
}

func TestTokenAuth(t *testing.T) {
	file := writeHtpasswd(t, "alice", "s3cret")
	h := newHarness(t, func(c *Config) {
		a, err := NewAuth(AuthConfig{Htpasswd: file})
		if err != nil {
			t.Fatal(err)
		}
		c.Auth = a
	})
	resp, b := h.do("POST", "/v2/r/blobs/uploads/", nil, nil)
	expect(t, resp, b, 401, codeUnauthorized)
	ch := resp.Header.Get("WWW-Authenticate")
	want := fmt.Sprintf(`Bearer realm="%s/token",service="berth-registry",scope="repository:r:pull,push"`, h.srv.URL)
	if ch != want {
		t.Fatalf("challenge %q, want %q", ch, want)
	}
	// The token endpoint wants valid credentials.
	resp, b = h.do("GET", "/token?service=berth-registry&scope=repository:r:pull,push", nil, nil)
	expect(t, resp, b, 401, codeUnauthorized)
	h.user, h.pass = "alice", "nope"
	resp, b = h.do("GET", "/token?service=berth-registry&scope=repository:r:pull,push", nil, nil)
	expect(t, resp, b, 401, codeUnauthorized)
	h.pass = "s3cret"
	resp, b = h.do("GET", "/token?service=berth-registry&scope=repository:r:pull,push", nil, nil)
	expect(t, resp, b, 200, "")
	var tr struct{ Token string }
	if err := json.Unmarshal(b, &tr); err != nil || tr.Token == "" {
		t.Fatalf("token response %s", b)
	}
	h.user, h.pass, h.tok = "", "", tr.Token
	h.pushImage("r", "v1", "tok")
	// The token covers r only, and a tampered token nothing.
	resp, b = h.do("GET", "/v2/other/tags/list", nil, nil)
	expect(t, resp, b, 401, codeUnauthorized)
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("challenge %q", resp.Header.Get("WWW-Authenticate"))
	}
	h.tok = tr.Token[:len(tr.Token)-2] + "AA"
	resp, b = h.do("GET", "/v2/r/tags/list", nil, nil)
	expect(t, resp, b, 401, codeUnauthorized)
	// The OAuth2 password grant gives the same.
	h.tok = ""
	resp, b = h.do("POST", "/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		[]byte("grant_type=password&username=alice&password=s3cret&service=berth-registry&scope=repository:r:pull"))
	expect(t, resp, b, 200, "")
}

func TestGC(t *testing.T) {
	h := newHarness(t, nil)
	keep, keepBlobs := h.pushImage("r", "v1", "keep")
	untagged, untaggedBlobs := h.pushImage("r", "v2", "untagged")
	resp, b := h.do("DELETE", "/v2/r/manifests/v2", nil, nil) // the tag only
	expect(t, resp, b, 202, "")
	gone, goneBlobs := h.pushImage("r", "v3", "gone")
	resp, b = h.do("DELETE", "/v2/r/manifests/"+gone.String(), nil, nil)
	expect(t, resp, b, 202, "")
	orphan := h.pushBlob("r", []byte("never referenced"))
	// A blob shared with another repository stays while that repository's image needs it.
	h.pushBlob("s", []byte("layer-keep"))

	present := func(d digest.Digest) bool { return exists(filepath.Join(h.root, "blobs", "sha256", d.Encoded())) }
	var out bytes.Buffer
	st, err := GC(h.root, GCOptions{DryRun: true, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	if st.Blobs != 4 || !present(orphan) || !present(gone) {
		t.Fatalf("dry run: %+v\n%s", st, out.String())
	}
	if _, err := GC(h.root, GCOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]digest.Digest{keep, untagged}, append(keepBlobs, untaggedBlobs...)...) {
		if !present(d) {
			t.Fatalf("gc removed %s", d)
		}
	}
	for _, d := range append([]digest.Digest{gone, orphan}, goneBlobs...) {
		if present(d) {
			t.Fatalf("gc kept %s", d)
		}
	}
	resp, b = h.do("HEAD", "/v2/r/blobs/"+orphan.String(), nil, nil)
	expect(t, resp, b, 404, "")
	st, err = GC(h.root, GCOptions{DeleteUntagged: true})
	if err != nil {
		t.Fatal(err)
	}
	if st.Manifests != 1 || present(untagged) || present(untaggedBlobs[0]) || !present(keep) {
		t.Fatalf("delete-untagged: %+v", st)
	}
	resp, b = h.do("GET", "/v2/r/manifests/v1", nil, nil)
	expect(t, resp, b, 200, "")
	resp, b = h.do("GET", "/v2/r/blobs/"+keepBlobs[1].String(), nil, nil)
	expect(t, resp, b, 200, "")
}
