package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
)

// lifecycleFake adds LifecycleBackend to the container fake.
type lifecycleFake struct {
	*fakeContainers
	stream, oneShot bool
	update          container.UpdateConfig
}

func (f *lifecycleFake) Pause(ctx context.Context, id string) error {
	if id == "paused" {
		return errdefs.Conflict(io.ErrUnexpectedEOF)
	}
	f.record("pause %s", id)
	return nil
}
func (f *lifecycleFake) Unpause(ctx context.Context, id string) error {
	f.record("unpause %s", id)
	return nil
}
func (f *lifecycleFake) Restart(ctx context.Context, id, signal string, timeout *int) error {
	f.record("restart %s %s %d", id, signal, *timeout)
	return nil
}
func (f *lifecycleFake) Top(ctx context.Context, id, psArgs string) (container.TopResponse, error) {
	return container.TopResponse{Titles: []string{"PID", psArgs}, Processes: [][]string{{"1", "x"}}}, nil
}
func (f *lifecycleFake) Stats(ctx context.Context, id string, stream, oneShot bool, emit func(*container.StatsResponse) error) error {
	f.stream, f.oneShot = stream, oneShot
	for i := 0; i < 2; i++ {
		if err := emit(&container.StatsResponse{ID: id, PidsStats: container.PidsStats{Current: uint64(i)}}); err != nil {
			return err
		}
	}
	return nil
}
func (f *lifecycleFake) Update(ctx context.Context, id string, u container.UpdateConfig) (container.UpdateResponse, error) {
	f.update = u
	return container.UpdateResponse{}, nil
}

type fakeEvents struct{ got EventOptions }

func (f *fakeEvents) Events(ctx context.Context, o EventOptions) (func(func(events.Message) error) error, error) {
	if o.Filters.Contains("bogus") {
		return nil, errdefs.InvalidParameter(io.ErrUnexpectedEOF)
	}
	f.got = o
	return func(emit func(events.Message) error) error {
		return emit(events.Message{Type: "container", Action: "start", Actor: events.Actor{ID: "c1"}})
	}, nil
}

func TestLifecycleRoutes(t *testing.T) {
	lf := &lifecycleFake{fakeContainers: newFakeContainers()}
	ev := &fakeEvents{}
	srv := httptest.NewServer(New(Config{Containers: lf, Events: ev}).Handler())
	defer srv.Close()
	call := func(method, path, body string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"POST", "/v1.51/containers/c1/pause", "", 204, ""},
		{"POST", "/v1.51/containers/paused/pause", "", 409, "message"},
		{"POST", "/containers/c1/unpause", "", 204, ""},
		{"POST", "/containers/c1/restart?t=3&signal=SIGINT", "", 204, ""},
		{"GET", "/containers/c1/top?ps_args=-o+pid", "", 200, `"Titles":["PID","-o pid"]`},
		{"GET", "/containers/c1/stats?stream=false", "", 200, `"pids_stats":{}`},
		{"POST", "/containers/c1/update", `{"Memory":134217728,"RestartPolicy":{"Name":"always"}}`, 200, `"Warnings":[]`},
		{"GET", "/events?since=1700000000.5&filters=%7B%22type%22%3A%7B%22container%22%3Atrue%7D%7D", "", 200, `"Action":"start"`},
		{"GET", "/events?filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D", "", 400, "message"},
	} {
		resp, body := call(tc.method, tc.path, tc.body)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.contains) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	if strings.Join(lf.calls, "|") != "pause c1|unpause c1|restart c1 SIGINT 3" {
		t.Errorf("calls %v", lf.calls)
	}
	if lf.stream || lf.update.Memory != 128<<20 || lf.update.RestartPolicy.Name != "always" {
		t.Errorf("stats stream %v, update %+v", lf.stream, lf.update)
	}
	if ev.got.Since != "1700000000.5" || !ev.got.Filters.ExactMatch("type", "container") {
		t.Errorf("event options %+v", ev.got)
	}

	// A stats stream is one JSON document per line.
	resp, err := http.Get(srv.URL + "/containers/c1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		var st container.StatsResponse
		if err := json.Unmarshal(sc.Bytes(), &st); err != nil || st.ID != "c1" {
			t.Errorf("line %q: %v", sc.Text(), err)
		}
		n++
	}
	if n != 2 || !lf.stream {
		t.Errorf("%d stats lines, stream %v", n, lf.stream)
	}

	// Without a lifecycle backend the routes say so.
	plain := httptest.NewServer(New(Config{Containers: newFakeContainers()}).Handler())
	defer plain.Close()
	r2, _ := http.Post(plain.URL+"/containers/c1/pause", "", nil)
	if r2.StatusCode != http.StatusNotImplemented {
		t.Errorf("no backend: %d", r2.StatusCode)
	}
}
