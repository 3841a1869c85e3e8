package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/backend"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

// fakeSwarm records what the routes pass it.
type fakeSwarm struct {
	version uint64
	spec    swarm.NodeSpec
	ref     string
	force   bool
	filters filters.Args
	err     error
	sel     backend.LogSelector
	logs    []*backend.LogMessage
	tty     bool
}

func (f *fakeSwarm) Init(context.Context, swarm.InitRequest) (string, error) { return "node1", f.err }
func (f *fakeSwarm) Join(context.Context, swarm.JoinRequest) error           { return f.err }
func (f *fakeSwarm) Leave(_ context.Context, force bool) error               { f.force = force; return f.err }
func (f *fakeSwarm) Inspect(context.Context) (swarm.Swarm, error)            { return swarm.Swarm{}, f.err }
func (f *fakeSwarm) Update(_ context.Context, v uint64, _ swarm.Spec, _ swarm.UpdateFlags) error {
	f.version = v
	return f.err
}
func (f *fakeSwarm) Nodes(_ context.Context, fl filters.Args) ([]swarm.Node, error) {
	f.filters = fl
	return []swarm.Node{{ID: "n1"}}, f.err
}
func (f *fakeSwarm) Node(_ context.Context, ref string) (swarm.Node, error) {
	f.ref = ref
	return swarm.Node{ID: ref}, f.err
}
func (f *fakeSwarm) UpdateNode(_ context.Context, ref string, v uint64, spec swarm.NodeSpec) error {
	f.ref, f.version, f.spec = ref, v, spec
	return f.err
}
func (f *fakeSwarm) RemoveNode(_ context.Context, ref string, force bool) error {
	f.ref, f.force = ref, force
	return f.err
}

func (f *fakeSwarm) CreateService(context.Context, swarm.ServiceSpec) (string, error) {
	return "svc1", f.err
}
func (f *fakeSwarm) Services(_ context.Context, fl filters.Args, _ bool) ([]swarm.Service, error) {
	f.filters = fl
	return []swarm.Service{}, f.err
}
func (f *fakeSwarm) InspectService(_ context.Context, ref string) (swarm.Service, error) {
	f.ref = ref
	return swarm.Service{ID: ref}, f.err
}
func (f *fakeSwarm) UpdateService(_ context.Context, ref string, v uint64, _ swarm.ServiceSpec, _ string) error {
	f.ref, f.version = ref, v
	return f.err
}
func (f *fakeSwarm) RemoveService(_ context.Context, ref string) error { f.ref = ref; return f.err }
func (f *fakeSwarm) Tasks(_ context.Context, fl filters.Args) ([]swarm.Task, error) {
	f.filters = fl
	return []swarm.Task{}, f.err
}
func (f *fakeSwarm) InspectTask(_ context.Context, ref string) (swarm.Task, error) {
	f.ref = ref
	return swarm.Task{ID: ref}, f.err
}

func (f *fakeSwarm) ServiceLogs(_ context.Context, sel backend.LogSelector, _ container.LogsOptions) (<-chan *backend.LogMessage, bool, error) {
	f.sel = sel
	if f.err != nil {
		return nil, false, f.err
	}
	ch := make(chan *backend.LogMessage, len(f.logs))
	for _, m := range f.logs {
		ch <- m
	}
	close(ch)
	return ch, f.tty, nil
}

func call(t *testing.T, h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body == "" {
		req.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestSwarmRoutes(t *testing.T) {
	f := &fakeSwarm{}
	h := New(Config{Swarm: f}).Handler()
	cases := []struct {
		method, path, body string
		status             int
		out                string
	}{
		{"POST", "/v1.51/swarm/init", `{"AdvertiseAddr":"10.0.0.1"}`, 200, `"node1"`},
		{"POST", "/swarm/init", ``, 400, "request body is empty"},
		{"POST", "/swarm/leave?force=1", ``, 200, ""},
		{"POST", "/swarm/update?version=x", `{}`, 400, "invalid version"},
		{"POST", "/swarm/update?version=7&rotateWorkerToken=true", `{}`, 200, ""},
		{"GET", "/swarm/unlockkey", ``, 501, "autolock"},
		{"GET", `/nodes?filters={"role":{"manager":true}}`, ``, 200, `"ID":"n1"`},
		{"GET", "/nodes/abc", ``, 200, `"ID":"abc"`},
		{"POST", "/nodes/abc/update", `{"Role":"worker"}`, 400, "invalid version"},
		{"POST", "/nodes/abc/update?version=12", `{"Role":"worker","Availability":"drain"}`, 200, ""},
		{"DELETE", "/nodes/abc?force=true", ``, 200, ""},
	}
	for _, tc := range cases {
		rec := call(t, h, tc.method, tc.path, tc.body)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.out) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, rec.Code, rec.Body.String(), tc.status, tc.out)
		}
	}
	if f.ref != "abc" || !f.force || f.version != 12 || f.spec.Availability != swarm.NodeAvailabilityDrain {
		t.Fatalf("backend saw %+v", f)
	}
	if !f.filters.ExactMatch("role", "manager") {
		t.Fatalf("filters: %v", f.filters)
	}
}

func TestSwarmErrors(t *testing.T) {
	f := &fakeSwarm{err: errdefs.Unavailable(errors.New("This node is not a swarm manager."))}
	rec := call(t, New(Config{Swarm: f}).Handler(), "GET", "/nodes", "")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"message":"This node is not a swarm manager."`) {
		t.Fatalf("%d %s", rec.Code, rec.Body.String())
	}
	rec = call(t, New(Config{}).Handler(), "GET", "/swarm", "")
	if rec.Code != 501 {
		t.Fatalf("no backend: %d", rec.Code)
	}
}
