package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/client"
)

// testEnv is a Server on a unix socket with fake backends, and clients that talk to it.
type testEnv struct {
	srv    *Server
	sock   string
	images *fakeImages
	ctrs   *fakeContainers
	cli    *client.Client // the Docker Go SDK, negotiating its version as the CLI does
	raw    *http.Client   // plain HTTP over the socket, for what the SDK hides
	logs   *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startServer(t *testing.T) *testEnv {
	t.Helper()
	// t.TempDir paths can pass the 108-byte limit of socket paths.
	dir, err := os.MkdirTemp("", "berthapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{
		sock:   sock,
		images: newFakeImages("busybox:latest", "docker.io/library/busybox:latest", "localhost:5000/x:1"),
		ctrs:   newFakeContainers(),
		logs:   &syncBuffer{},
	}
	env.ctrs.add("c1", "web", false)
	env.ctrs.add("c2", "term", true)
	env.srv = New(Config{
		Images:     env.images,
		Containers: env.ctrs,
		System:     fakeSystem{},
		Version:    types.Version{Version: "0.0.1-test", GitCommit: "abc123"},
		Logger:     slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	served := make(chan error, 1)
	go func() { served <- env.srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := env.srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	env.cli, err = client.NewClientWithOpts(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.cli.Close() })
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	env.raw = &http.Client{Transport: tr}
	return env
}

// do sends a raw request and returns the response with its body read.
func (e *testEnv) do(t *testing.T, method, path string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://berth"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(data)
}

func errorMessage(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", body, err)
	}
	return e.Message
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPingAndNegotiation(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	ping, err := env.cli.Ping(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ping.APIVersion != "1.51" || ping.OSType != "linux" || ping.BuilderVersion != "1" || ping.Experimental {
		t.Errorf("ping = %+v", ping)
	}
	env.cli.NegotiateAPIVersion(ctx)
	if v := env.cli.ClientVersion(); v != "1.51" {
		t.Errorf("negotiated version %q, want 1.51", v)
	}

	for _, method := range []string{http.MethodHead, http.MethodGet} {
		resp, body := env.do(t, method, "/_ping", nil)
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Api-Version") != "1.51" || h.Get("Ostype") != "linux" ||
			h.Get("Builder-Version") != "1" || h.Get("Docker-Experimental") != "false" ||
			!strings.HasPrefix(h.Get("Cache-Control"), "no-cache") || h.Get("Server") != "Berth/0.0.1-test (linux)" {
			t.Errorf("%s /_ping: %d %v", method, resp.StatusCode, h)
		}
		want := "OK"
		if method == http.MethodHead {
			want = ""
		}
		if body != want {
			t.Errorf("%s /_ping body %q, want %q", method, body, want)
		}
	}

	// A client pinned to an older version uses /v1.41/ paths.
	old, err := client.NewClientWithOpts(client.WithHost("unix://"+env.sock), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.ContainerInspect(ctx, "web"); err != nil {
		t.Errorf("1.41 client: %v", err)
	}
}

func TestVersionBounds(t *testing.T) {
	env := startServer(t)
	cases := []struct {
		path   string
		status int
		msg    string
	}{
		{"/version", 200, ""},
		{"/v1.51/version", 200, ""},
		{"/v1.24/_ping", 200, ""},
		{"/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is 1.51"},
		{"/v1.12/containers/json", 400, "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{"/v1.51/nothing", 404, "page not found"},
		{"/nothing", 404, "page not found"},
		{"/v1.51", 404, "page not found"},
		{"/containers/c1/nothing", 404, "page not found"},
	}
	for _, tc := range cases {
		resp, body := env.do(t, http.MethodGet, tc.path, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("GET %s: status %d, want %d (%s)", tc.path, resp.StatusCode, tc.status, body)
			continue
		}
		if tc.msg != "" {
			if got := errorMessage(t, body); got != tc.msg {
				t.Errorf("GET %s: message %q, want %q", tc.path, got, tc.msg)
			}
		}
	}

	tooNew, err := client.NewClientWithOpts(client.WithHost("unix://"+env.sock), client.WithVersion("1.99"))
	if err != nil {
		t.Fatal(err)
	}
	defer tooNew.Close()
	_, err = tooNew.ServerVersion(ctxT(t))
	if !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "client version 1.99 is too new") {
		t.Errorf("1.99 client: %v", err)
	}
}

func TestVersionAndInfo(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)
	v, err := env.cli.ServerVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != "0.0.1-test" || v.APIVersion != "1.51" || v.MinAPIVersion != "1.24" || v.Os != "linux" ||
		v.GitCommit != "abc123" || len(v.Components) != 1 || v.Components[0].Name != "Engine" {
		t.Errorf("version = %+v", v)
	}
	info, err := env.cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != "berth-test" || info.Driver != "overlayfs" {
		t.Errorf("info = %+v", info)
	}
	env.do(t, http.MethodGet, "/v1.99/info", nil)
	for _, want := range []string{`msg="api request" method=GET path=/v1.51/info query="" status=200`, `path=/v1.99/info query="" status=400`} {
		if !strings.Contains(env.logs.String(), want) {
			t.Errorf("request log lacks %q:\n%s", want, env.logs.String())
		}
	}
}

func TestMissingBackend(t *testing.T) {
	srv := New(Config{})
	rec := &responseRecorder{header: http.Header{}}
	srv.Handler().ServeHTTP(rec, mustRequest(t, http.MethodGet, "/v1.51/containers/json"))
	if rec.status != http.StatusNotImplemented {
		t.Errorf("status %d, want 501", rec.status)
	}
}

// responseRecorder is the least ResponseWriter needed to call Handler without a listener.
type responseRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *responseRecorder) Header() http.Header { return r.header }
func (r *responseRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(p)
}
func (r *responseRecorder) WriteHeader(code int) { r.status = code }

func mustRequest(t *testing.T, method, path string) *http.Request {
	req, err := http.NewRequest(method, "http://berth"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func (e *testEnv) srvShutdownCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
