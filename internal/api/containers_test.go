package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"
)

func TestContainerRoutes(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)
	f := env.ctrs

	created, err := env.cli.ContainerCreate(ctx, &container.Config{Image: "busybox", Cmd: []string{"true"}},
		&container.HostConfig{Resources: container.Resources{Memory: 1 << 20}}, nil, nil, "app")
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || f.created.Image != "busybox" || f.host.Memory != 1<<20 {
		t.Errorf("create: %+v, config %+v", created, f.created)
	}
	if err := env.cli.ContainerStart(ctx, "app", container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	// Starting a running container is 304, which the SDK takes as success.
	if err := env.cli.ContainerStart(ctx, "app", container.StartOptions{}); err != nil {
		t.Errorf("second start: %v", err)
	}
	if resp, _ := env.do(t, http.MethodPost, "/v1.51/containers/app/start", nil); resp.StatusCode != http.StatusNotModified {
		t.Errorf("second start status %d, want 304", resp.StatusCode)
	}

	timeout := 3
	if err := env.cli.ContainerStop(ctx, "app", container.StopOptions{Signal: "SIGINT", Timeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	if err := env.cli.ContainerStop(ctx, "web", container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.cli.ContainerKill(ctx, "app", "SIGHUP"); err != nil {
		t.Fatal(err)
	}
	if err := env.cli.ContainerResize(ctx, "term", container.ResizeOptions{Height: 24, Width: 80}); err != nil {
		t.Fatal(err)
	}
	if err := env.cli.ContainerRemove(ctx, "app", container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		t.Fatal(err)
	}
	want := []string{"stop app SIGINT 3", "stop web  nil", "kill app SIGHUP", "resize term 24x80", "remove app true true"}
	if strings.Join(f.calls, "|") != strings.Join(want, "|") {
		t.Errorf("calls %q, want %q", f.calls, want)
	}

	if err := env.cli.ContainerRename(ctx, "web", "web2"); err != nil {
		t.Fatal(err)
	}
	got, err := env.cli.ContainerInspect(ctx, "web2")
	if err != nil || got.ID != "c1" || got.Name != "/web2" {
		t.Errorf("inspect after rename: %+v %v", got.ContainerJSONBase, err)
	}

	list, err := env.cli.ContainerList(ctx, container.ListOptions{All: true, Limit: 5, Size: true,
		Filters: filters.NewArgs(filters.Arg("status", "exited"), filters.Arg("label", "a=b"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || f.listArgs != "all=true limit=5 size=true" || f.listF.Get("status")[0] != "exited" || !f.listF.ExactMatch("label", "a=b") {
		t.Errorf("list: %d items, args %q, filters %v", len(list), f.listArgs, f.listF)
	}
}

func TestContainerErrors(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	_, err := env.cli.ContainerInspect(ctx, "x")
	if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such container: x") {
		t.Errorf("inspect missing: %v", err)
	}
	resp, body := env.do(t, http.MethodGet, "/containers/x/json", nil)
	if resp.StatusCode != 404 || errorMessage(t, body) != "No such container: x" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("raw inspect missing: %d %s", resp.StatusCode, body)
	}

	if _, err := env.cli.ContainerCreate(ctx, &container.Config{Image: "busybox"}, nil, nil, nil, "web"); !cerrdefs.IsConflict(err) {
		t.Errorf("create with a taken name: %v", err)
	}
	if err := env.cli.ContainerStart(ctx, "web", container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := env.cli.ContainerRemove(ctx, "web", container.RemoveOptions{}); !cerrdefs.IsConflict(err) {
		t.Errorf("remove running: %v", err)
	}

	cases := []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPost, "/containers/create", "{not json", 400},
		{http.MethodPost, "/containers/create", "", 400},
		{http.MethodPost, "/containers/create", "{}", 400},
		{http.MethodPost, "/containers/web/stop?t=soon", "", 400},
		{http.MethodPost, "/containers/web/resize?h=x&w=80", "", 400},
		{http.MethodPost, "/containers/web/rename", "", 400},
		{http.MethodPost, "/containers/web/wait?condition=whenever", "", 400},
		{http.MethodGet, "/containers/json?filters=%7Bbad", "", 400},
		{http.MethodPost, "/containers/web/rename?name=boom", "", 500},
	}
	for _, tc := range cases {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		resp, got := env.do(t, tc.method, tc.path, body)
		if resp.StatusCode != tc.status || errorMessage(t, got) == "" {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, got, tc.status)
		}
	}
	if !strings.Contains(env.logs.String(), "database is locked") {
		t.Errorf("500 not logged:\n%s", env.logs.String())
	}
}

func TestWaitSendsHeaderFirst(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://berth/v1.51/containers/web/wait?condition=next-exit", nil)
	resp, err := env.raw.Do(req) // returns once the header is in, while the wait is still pending
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || env.ctrs.condition() != container.WaitConditionNextExit {
		t.Fatalf("wait: status %d, condition %q", resp.StatusCode, env.ctrs.condition())
	}
	env.ctrs.waitCh <- container.WaitResponse{StatusCode: 3}
	var wr container.WaitResponse
	if err := json.NewDecoder(resp.Body).Decode(&wr); err != nil || wr.StatusCode != 3 {
		t.Errorf("wait result %+v, %v", wr, err)
	}

	// The SDK's way, with the default condition.
	results, errs := env.cli.ContainerWait(ctx, "web", "")
	time.Sleep(50 * time.Millisecond)
	env.ctrs.waitCh <- container.WaitResponse{StatusCode: 7}
	select {
	case r := <-results:
		if r.StatusCode != 7 || env.ctrs.condition() != container.WaitConditionNotRunning {
			t.Errorf("SDK wait: %+v, condition %q", r, env.ctrs.condition())
		}
	case err := <-errs:
		t.Fatal(err)
	}

	_, errs = env.cli.ContainerWait(ctx, "ghost", container.WaitConditionNotRunning)
	if err := <-errs; !cerrdefs.IsNotFound(err) {
		t.Errorf("wait on missing container: %v", err)
	}
}

// lineWriter hands each written chunk to a channel, so a test can see output arrive while the stream is open.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

func TestLogsStreaming(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	rc, err := env.cli.ContainerLogs(ctx, "web", container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Tail: "10", Timestamps: true, Since: "42"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	stdout := make(lineWriter, 10)
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(stdout, &stderr, rc)
		done <- err
	}()
	// The first line must arrive while the backend is still holding the second one back.
	select {
	case line := <-stdout:
		if line != "line 1\n" {
			t.Errorf("first line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first log line not flushed")
	}
	close(env.ctrs.logsMore)
	if line := <-stdout; line != "line 2\n" {
		t.Errorf("second line %q", line)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if stderr.String() != "oops 1\n" {
		t.Errorf("stderr %q", stderr.String())
	}
	o := env.ctrs.logsOpts
	if !o.ShowStdout || !o.ShowStderr || !o.Follow || !o.Timestamps || o.Tail != "10" || o.Since != "42" {
		t.Errorf("logs options %+v", o)
	}

	// A failure after the header reaches the SDK through the stream.
	rc2, err := env.cli.ContainerLogs(ctx, "web", container.LogsOptions{ShowStdout: true, Follow: true, Tail: "fail"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc2.Close()
	if _, err := stdcopy.StdCopy(io.Discard, io.Discard, rc2); err == nil || !strings.Contains(err.Error(), "log file vanished") {
		t.Errorf("mid-stream error: %v", err)
	}

	for _, tc := range []struct{ path, media string }{
		{"/v1.51/containers/web/logs?stdout=1", mediaMultiplexed},
		{"/v1.51/containers/term/logs?stdout=1", mediaRaw},
		{"/v1.41/containers/web/logs?stdout=1", mediaRaw},
	} {
		resp, _ := env.do(t, http.MethodGet, tc.path, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != tc.media {
			t.Errorf("%s: %d %q, want %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), tc.media)
		}
	}
	if resp, _ := env.do(t, http.MethodGet, "/containers/web/logs", nil); resp.StatusCode != 400 {
		t.Errorf("logs without streams: %d", resp.StatusCode)
	}
	if _, err := env.cli.ContainerLogs(ctx, "ghost", container.LogsOptions{ShowStdout: true}); !cerrdefs.IsNotFound(err) {
		t.Errorf("logs of missing container: %v", err)
	}
}

func TestAttach(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	hr, err := env.cli.ContainerAttach(ctx, "web", container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true, DetachKeys: "ctrl-x"})
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Close()
	if mt, ok := hr.MediaType(); !ok || mt != mediaMultiplexed {
		t.Errorf("media type %q %v", mt, ok)
	}
	if _, err := hr.Conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	if err := hr.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, hr.Reader); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != "hello\nping\nbye\n" || stderr.String() != "warning\n" {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	if o := <-env.ctrs.attached; !o.Stream || !o.Stdin || !o.Stdout || !o.Stderr || o.Logs || o.DetachKeys != "ctrl-x" {
		t.Errorf("attach options %+v", o)
	}

	// A TTY container's output is raw.
	hr2, err := env.cli.ContainerAttach(ctx, "term", container.AttachOptions{Stream: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer hr2.Close()
	out, _ := io.ReadAll(hr2.Reader)
	if mt, _ := hr2.MediaType(); mt != mediaRaw || string(out) != "tty hello\r\n" {
		t.Errorf("tty attach: %q %q", mt, out)
	}
	<-env.ctrs.attached

	if _, err := env.cli.ContainerAttach(ctx, "ghost", container.AttachOptions{Stream: true}); !cerrdefs.IsNotFound(err) && !strings.Contains(err.Error(), "404") {
		t.Errorf("attach to missing container: %v", err)
	}

	// Without an Upgrade header the answer is a plain 200 followed by the stream.
	conn, err := net.Dial("unix", env.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1.51/containers/term/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: berth\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != mediaRaw || string(body) != "tty hello\r\n" {
		t.Errorf("plain attach: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	<-env.ctrs.attached
}

func TestShutdownEndsStreams(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	results, errs := env.cli.ContainerWait(ctx, "web", "")
	hr, err := env.cli.ContainerAttach(ctx, "web", container.AttachOptions{Stream: true, Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer hr.Close()
	<-env.ctrs.attached
	for deadline := time.Now().Add(5 * time.Second); env.ctrs.condition() == ""; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("wait never reached the backend")
		}
	}

	start := time.Now()
	sctx, cancel := env.srvShutdownCtx()
	defer cancel()
	if err := env.srv.Shutdown(sctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	select {
	case r := <-results:
		if r.Error == nil || !strings.Contains(r.Error.Message, "shutting down") {
			t.Errorf("wait result at shutdown: %+v", r)
		}
	case err := <-errs:
		t.Errorf("wait error at shutdown: %v", err)
	}
	if _, err := io.ReadAll(hr.Reader); err != nil && !strings.Contains(err.Error(), "reset") {
		t.Errorf("attach read after shutdown: %v", err)
	}
}
