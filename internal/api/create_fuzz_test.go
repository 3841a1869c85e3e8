package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzContainerCreate posts arbitrary bodies and names to POST /containers/create. Whatever arrives,
// the answer is 201 with the config handed to the backend, or a 4xx with Docker's {"message": ...}:
// never a 5xx or a panic. What the container service does with the config is FuzzCreateRequest's
// (internal/container). Seeds live in testdata/fuzz/FuzzContainerCreate.
func FuzzContainerCreate(f *testing.F) {
	f.Add([]byte(`{"Image":"busybox","Cmd":["true"],"HostConfig":{"AutoRemove":true}}`), "web", "1.51")
	f.Add([]byte(`{"HostConfig":{}}`), "", "1.24")
	f.Add([]byte(`{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"n":{"Aliases":["a"]}}}}`), "/x", "")
	f.Add([]byte(`null`), "a b", "9.99")
	f.Fuzz(func(t *testing.T, body []byte, name, version string) {
		fc := newFakeContainers()
		h := New(Config{Containers: fc}).Handler()
		p := "/containers/create?name=" + url.QueryEscape(name)
		if version != "" {
			p = "/v" + url.PathEscape(version) + p
		}
		req, err := http.NewRequest(http.MethodPost, "http://berth"+p, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
			if fc.created == nil {
				t.Fatalf("201 without a config reaching the backend: %s", rec.Body)
			}
		case rec.Code >= 400 && rec.Code < 500:
			if !bytes.Contains(rec.Body.Bytes(), []byte(`"message"`)) {
				t.Fatalf("%d without a message: %q", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
	})
}
