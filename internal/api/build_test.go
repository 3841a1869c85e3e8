package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/pkg/jsonmessage"
)

type fakeBuilder struct {
	pruned BuildPruneOptions
	opts   BuildOptions
	body   string
	err    error
}

type exitErr struct{ code int }

func (e exitErr) Error() string {
	return fmt.Sprintf("The command 'x' returned a non-zero code: %d", e.code)
}
func (e exitErr) ExitCode() int { return e.code }

func (f *fakeBuilder) Build(_ context.Context, src io.Reader, o BuildOptions, out io.Writer) (string, error) {
	b, _ := io.ReadAll(src)
	f.opts, f.body = o, string(b)
	io.WriteString(out, "Step 1/1 : FROM busybox\n")
	return "sha256:abc", f.err
}

func (f *fakeBuilder) PruneCache(_ context.Context, o BuildPruneOptions) (BuildPruneReport, error) {
	f.pruned = o
	return BuildPruneReport{CachesDeleted: []string{"k"}, SpaceReclaimed: 7}, nil
}

func buildMessages(t *testing.T, body io.Reader) []jsonmessage.JSONMessage {
	t.Helper()
	var out []jsonmessage.JSONMessage
	dec := json.NewDecoder(body)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
}

func TestBuildRoute(t *testing.T) {
	fb := &fakeBuilder{}
	h := New(Config{Builder: fb}).Handler()
	q := `t=a:1&t=b&dockerfile=ci/Dockerfile&buildargs={"X":"1","Y":null}&labels={"l":"v"}&nocache=1&q=1&target=t&networkmode=default&cachefrom=["c"]`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1.44/build?"+q, strings.NewReader("context")))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	o := fb.opts
	if !slices.Equal(o.Tags, []string{"a:1", "b"}) || o.Dockerfile != "ci/Dockerfile" || *o.BuildArgs["X"] != "1" || o.BuildArgs["Y"] != nil ||
		o.Labels["l"] != "v" || !o.NoCache || !o.Quiet || o.Target != "t" || o.NetworkMode != "" || !slices.Equal(o.CacheFrom, []string{"c"}) || fb.body != "context" {
		t.Fatalf("options %+v body %q", o, fb.body)
	}
	msgs := buildMessages(t, rec.Body)
	if len(msgs) != 3 || msgs[0].Stream != "Step 1/1 : FROM busybox\n" || !strings.Contains(string(*msgs[1].Aux), `"ID":"sha256:abc"`) || msgs[2].Stream != "sha256:abc\n" {
		t.Fatalf("messages %+v", msgs)
	}

	fb.err = exitErr{3}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/build", strings.NewReader("")))
	msgs = buildMessages(t, rec.Body)
	last := msgs[len(msgs)-1]
	if last.Error == nil || last.Error.Code != 3 || !strings.Contains(last.Error.Message, "non-zero code: 3") {
		t.Fatalf("error message %+v", last)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/build?version=2", nil))
	if rec.Code != http.StatusNotImplemented {
		t.Fatalf("BuildKit request: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/build/prune", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"SpaceReclaimed":7`) {
		t.Fatalf("prune: %d %s", rec.Code, rec.Body)
	}
}
