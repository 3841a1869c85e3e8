package api

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/backend"
	"github.com/docker/docker/pkg/stdcopy"
)

func taskLine(source, line string) *backend.LogMessage {
	return &backend.LogMessage{Line: []byte(line), Source: source, Timestamp: time.Date(2026, 12, 6, 11, 0, 0, 5, time.UTC),
		Attrs: []backend.LogAttr{{Key: "com.docker.swarm.task.id", Value: "t1"}, {Key: "com.docker.swarm.node.id", Value: "n 1"}, {Key: "com.docker.swarm.service.id", Value: "s1"}}}
}

func TestServiceLogsRoutes(t *testing.T) {
	f := &fakeSwarm{logs: []*backend.LogMessage{taskLine("stdout", "hello\n"), taskLine("stderr", "oops\n"), {Err: errors.New("node n2 is not available")}}}
	h := New(Config{Swarm: f}).Handler()
	cases := []struct {
		path           string
		stdout, stderr string
		sel            backend.LogSelector
	}{
		{"/v1.45/services/web/logs?stdout=1&stderr=1", "hello\n", "oops\n", backend.LogSelector{Services: []string{"web"}}},
		{"/v1.45/tasks/t1/logs?stdout=1", "hello\n", "", backend.LogSelector{Tasks: []string{"t1"}}},
		{"/v1.45/services/web/logs?stdout=1&details=1&timestamps=1",
			"2026-12-06T11:00:00.000000005Z com.docker.swarm.node.id=n+1,com.docker.swarm.service.id=s1,com.docker.swarm.task.id=t1 hello\n", "",
			backend.LogSelector{Services: []string{"web"}}},
	}
	for _, tc := range cases {
		rec := call(t, h, "GET", tc.path, "")
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != mediaMultiplexed {
			t.Fatalf("%s: %d %s", tc.path, rec.Code, rec.Header().Get("Content-Type"))
		}
		var stdout, stderr bytes.Buffer
		_, err := stdcopy.StdCopy(&stdout, &stderr, rec.Body)
		if err == nil || !strings.Contains(err.Error(), "Error grabbing logs: node n2 is not available") {
			t.Errorf("%s: the stream's error: %v", tc.path, err)
		}
		if stdout.String() != tc.stdout || stderr.String() != tc.stderr {
			t.Errorf("%s: stdout %q stderr %q, want %q %q", tc.path, stdout.String(), stderr.String(), tc.stdout, tc.stderr)
		}
		if !equalSelectors(f.sel, tc.sel) {
			t.Errorf("%s: selector %+v, want %+v", tc.path, f.sel, tc.sel)
		}
	}

	// A TTY service's logs are one raw stream.
	f.tty, f.logs = true, []*backend.LogMessage{taskLine("stdout", "raw\n")}
	rec := call(t, h, "GET", "/v1.45/services/web/logs?stdout=1&stderr=1", "")
	if rec.Header().Get("Content-Type") != mediaRaw || rec.Body.String() != "raw\n" {
		t.Fatalf("tty: %s %q", rec.Header().Get("Content-Type"), rec.Body.String())
	}

	f.err = errdefs.NotFound(errors.New("no such task or service: nope"))
	rec = call(t, h, "GET", "/v1.45/services/nope/logs?stdout=1", "")
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "no such task or service: nope") {
		t.Fatalf("unknown service: %d %s", rec.Code, rec.Body.String())
	}
}

func equalSelectors(a, b backend.LogSelector) bool {
	return strings.Join(a.Services, ",") == strings.Join(b.Services, ",") && strings.Join(a.Tasks, ",") == strings.Join(b.Tasks, ",")
}
