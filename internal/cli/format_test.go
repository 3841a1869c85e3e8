package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
)

func TestContainerStatus(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	ts := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339Nano) }
	zero := "0001-01-01T00:00:00Z"
	cases := []struct {
		st   container.State
		want string
	}{
		{container.State{Status: "running", Running: true, StartedAt: ts(3 * time.Second)}, "Up 3 seconds"},
		{container.State{Status: "running", Running: true, StartedAt: ts(500 * time.Millisecond)}, "Up Less than a second"},
		{container.State{Status: "running", Running: true, StartedAt: ts(90 * time.Minute)}, "Up 2 hours"},
		{container.State{Status: "paused", Running: true, Paused: true, StartedAt: ts(time.Minute)}, "Up About a minute (Paused)"},
		{container.State{Status: "exited", ExitCode: 0, StartedAt: ts(3 * time.Minute), FinishedAt: ts(2 * time.Minute)}, "Exited (0) 2 minutes ago"},
		{container.State{Status: "exited", ExitCode: 137, StartedAt: ts(49 * time.Hour), FinishedAt: ts(48 * time.Hour)}, "Exited (137) 2 days ago"},
		{container.State{Status: "created", StartedAt: zero, FinishedAt: zero}, "Created"},
		{container.State{Status: "dead", Dead: true, StartedAt: ts(time.Hour)}, "Dead"},
		{container.State{Status: "removing", StartedAt: ts(time.Hour), FinishedAt: ts(time.Minute)}, "Removal In Progress"},
	}
	for _, tc := range cases {
		if got := containerStatus(&tc.st, now); got != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.st, got, tc.want)
		}
	}
	if got := humanSince(now.Add(-26*time.Hour), now); got != "26 hours ago" {
		t.Errorf("humanSince = %q", got)
	}
}

func sampleContainers(now time.Time) []any {
	return []any{
		psRow{trunc: true, now: now, c: &container.Summary{
			ID: "0123456789abcdef0123456789abcdef", Names: []string{"/web", "/other/link"}, Image: "busybox",
			Command: "sh -c 'echo out; echo err >&2'", Created: now.Add(-3 * time.Minute).Unix(), State: "running",
			Status: "Up 3 minutes", Labels: map[string]string{"b": "2", "a": "1"},
			Ports: []container.Port{{IP: "0.0.0.0", PrivatePort: 80, PublicPort: 8080, Type: "tcp"}, {PrivatePort: 443, Type: "tcp"}},
		}},
		psRow{trunc: true, now: now, c: &container.Summary{
			ID: "fedcba9876543210", Names: []string{"/db"}, Image: "sha256:aaaabbbbccccddddeeee", ImageID: "sha256:aaaabbbbccccddddeeee",
			Command: "true", Created: now.Add(-2 * time.Hour).Unix(), State: "exited", Status: "Exited (3) 2 hours ago",
		}},
	}
}

func TestPsTable(t *testing.T) {
	now := time.Now()
	var buf bytes.Buffer
	if err := renderRows(&buf, psDefaultFormat, psDefaultFormat, psRow{hdr: true}, sampleContainers(now)); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"CONTAINER ID   IMAGE          COMMAND                  CREATED         STATUS                   PORTS                           NAMES\n" +
		"0123456789ab   busybox        \"sh -c 'echo out; ec…\"   3 minutes ago   Up 3 minutes             0.0.0.0:8080->80/tcp, 443/tcp   web\n" +
		"fedcba987654   aaaabbbbcccc   \"true\"                   2 hours ago     Exited (3) 2 hours ago                                   db\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestPsTemplates(t *testing.T) {
	now := time.Now()
	rows := sampleContainers(now)
	cases := []struct{ format, want string }{
		{"{{.ID}}", "0123456789ab\nfedcba987654\n"},
		{"{{.Names}} {{.Labels}} {{.Label \"b\"}}", "web a=1,b=2 2\ndb  \n"},
		{`table {{.Names}}\t{{.State}}`, "NAMES     STATE\nweb       running\ndb        exited\n"},
		{"{{.Names}}|{{upper .State}}|{{json .Names}}", "web|RUNNING|\"web\"\ndb|EXITED|\"db\"\n"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		if err := renderRows(&buf, tc.format, psDefaultFormat, psRow{hdr: true}, rows); err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if buf.String() != tc.want {
			t.Errorf("%q: got %q, want %q", tc.format, buf.String(), tc.want)
		}
	}
	var buf bytes.Buffer
	if err := renderRows(&buf, "json", psDefaultFormat, psRow{hdr: true}, rows[:1]); err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"ID":"0123456789ab"`, `"Names":"web"`, `"Status":"Up 3 minutes"`, `"Command":"\"sh -c 'echo out; ec…\""`, `"Ports":"0.0.0.0:8080-\u003e80/tcp, 443/tcp"`} {
		if !strings.Contains(buf.String(), frag) {
			t.Errorf("json %s lacks %s", buf.String(), frag)
		}
	}
	if err := renderRows(&buf, "{{.Nope", psDefaultFormat, nil, rows); err == nil || !strings.Contains(err.Error(), "template parsing error") {
		t.Errorf("bad template: %v", err)
	}
	noTrunc := rows[0].(psRow)
	noTrunc.trunc = false
	if noTrunc.ID() != "0123456789abcdef0123456789abcdef" || noTrunc.Names() != "web,other/link" || noTrunc.Command() != `"sh -c 'echo out; echo err >&2'"` {
		t.Errorf("no-trunc: %q %q %q", noTrunc.ID(), noTrunc.Names(), noTrunc.Command())
	}
}

func TestImageRows(t *testing.T) {
	now := time.Now()
	img := &image.Summary{ID: "sha256:0123456789abcdef", RepoTags: []string{"localhost:5000/app:v1", "app:latest", "app:v2"},
		RepoDigests: []string{"app@sha256:feed"}, Created: now.Add(-48 * time.Hour).Unix(), Size: 1984162}
	dangling := &image.Summary{ID: "sha256:fedcba9876543210", RepoTags: []string{"<none>:<none>"}, RepoDigests: []string{"<none>@<none>"}, Created: now.Unix()}
	var rows []any
	for _, r := range append(imageRows(img, true, now), imageRows(dangling, true, now)...) {
		rows = append(rows, r)
	}
	var buf bytes.Buffer
	if err := renderRows(&buf, "", imagesDefaultFormat, imageRow{hdr: true}, rows); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"REPOSITORY           TAG       IMAGE ID       CREATED                  SIZE\n" +
		"app                  latest    0123456789ab   2 days ago               1.98MB\n" +
		"app                  v2        0123456789ab   2 days ago               1.98MB\n" +
		"localhost:5000/app   v1        0123456789ab   2 days ago               1.98MB\n" +
		"<none>               <none>    fedcba987654   Less than a second ago   0B\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	if r := imageRows(img, true, now)[0]; r.Digest() != "sha256:feed" {
		t.Errorf("digest = %q", r.Digest())
	}
}

func TestHistoryRows(t *testing.T) {
	now := time.Now()
	h := []image.HistoryResponseItem{
		{ID: "sha256:0123456789abcdef", Created: now.Add(-time.Hour).Unix(), CreatedBy: "/bin/sh -c #(nop)\tCMD [\"sh\" \"-c\" \"a very long command line indeed\"]", Size: 0},
		{ID: "<missing>", Created: now.Add(-time.Hour).Unix(), CreatedBy: "ADD rootfs", Size: 2048, Comment: "imported"},
	}
	var rows []any
	for i := range h {
		rows = append(rows, historyRow{h: &h[i], trunc: true, human: true, now: now})
	}
	var buf bytes.Buffer
	def := "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
	if err := renderRows(&buf, "", def, historyRow{hdr: true, human: true}, rows); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"IMAGE          CREATED             CREATED BY                                      SIZE      COMMENT\n" +
		"0123456789ab   About an hour ago   /bin/sh -c #(nop) CMD [\"sh\" \"-c\" \"a very lon…   0B        \n" +
		"<missing>      About an hour ago   ADD rootfs                                      2.05kB    imported\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestFormatPortsAndHelpers(t *testing.T) {
	got := formatPorts([]container.Port{
		{IP: "::", PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
		{IP: "0.0.0.0", PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
		{PrivatePort: 53, Type: "udp"},
	})
	if want := "53/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"; got != want {
		t.Errorf("formatPorts = %q, want %q", got, want)
	}
	if truncateID("sha256:0123456789abcdef") != "0123456789ab" || truncateID("abc") != "abc" {
		t.Error("truncateID")
	}
	if ellipsis("héllo wörld", 5) != "héll…" || ellipsis("abc", 5) != "abc" {
		t.Errorf("ellipsis = %q", ellipsis("héllo wörld", 5))
	}
}
