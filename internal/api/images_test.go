package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/opencontainers/go-digest"
)

// decodeStream reads a JSON message stream to the end.
func decodeStream(t *testing.T, r io.Reader) []jsonmessage.JSONMessage {
	t.Helper()
	var out []jsonmessage.JSONMessage
	dec := json.NewDecoder(r)
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

func TestImportStreamsBody(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	// The backend sees the first chunk before the client has written the second: the body is not buffered.
	gotFirst := make(chan struct{})
	env.images.importRead = func(src io.Reader) ([]byte, error) {
		first := make([]byte, 5)
		if _, err := io.ReadFull(src, first); err != nil {
			return nil, err
		}
		close(gotFirst)
		rest, err := io.ReadAll(src)
		return append(first, rest...), err
	}
	pr, pw := io.Pipe()
	type result struct {
		body io.ReadCloser
		err  error
	}
	done := make(chan result, 1)
	go func() {
		body, err := env.cli.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, "localhost:5000/my/img",
			image.ImportOptions{Tag: "v1", Message: "from test", Changes: []string{`CMD ["sh"]`, "ENV A=b"}})
		done <- result{body, err}
	}()
	pw.Write([]byte("first"))
	select {
	case <-gotFirst:
	case <-time.After(5 * time.Second):
		t.Fatal("backend did not see the first chunk while the upload was open")
	}
	pw.Write([]byte("second"))
	pw.Close()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.body.Close()
	msgs := decodeStream(t, res.body)
	if len(msgs) != 1 || msgs[0].Status != digest.FromString("firstsecond").String() {
		t.Errorf("import stream %+v", msgs)
	}
	o := env.images.importOpts
	if o.Ref != "localhost:5000/my/img:v1" || o.Message != "from test" || len(o.Changes) != 2 || o.Changes[1] != "ENV A=b" {
		t.Errorf("import options %+v", o)
	}

	// A failure before any output keeps its status.
	env.images.importRead = nil
	_, err := env.cli.ImageImport(ctx, image.ImportSource{Source: strings.NewReader("not a tar"), SourceName: "-"}, "", image.ImportOptions{})
	if !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "invalid tar header") {
		t.Errorf("bad import: %v", err)
	}
	// Without a registry backend, pull says which service is missing.
	_, err = env.cli.ImageCreate(ctx, "alpine:3", image.CreateOptions{})
	if !cerrdefs.IsNotImplemented(err) || !strings.Contains(err.Error(), "registry service is not available") {
		t.Errorf("pull: %v", err)
	}
	if resp, body := env.do(t, http.MethodPost, "/images/create?fromSrc=http://example.invalid/x.tar", nil); resp.StatusCode != 501 {
		t.Errorf("import from URL: %d %s", resp.StatusCode, body)
	}
}

func TestLoadAndSave(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	resp, err := env.cli.ImageLoad(ctx, strings.NewReader("archive"), client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatal(err)
	}
	msgs := decodeStream(t, resp.Body)
	resp.Body.Close()
	if !resp.JSON || len(msgs) != 1 || msgs[0].Stream != "Loaded image: busybox:latest\n" {
		t.Errorf("load: json=%v %+v", resp.JSON, msgs)
	}

	if _, err := env.cli.ImageLoad(ctx, strings.NewReader("garbage")); !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("load garbage: %v", err)
	}

	// Once the stream has begun, an error travels in it as Docker's errorDetail.
	resp, err = env.cli.ImageLoad(ctx, strings.NewReader("half"))
	if err != nil {
		t.Fatal(err)
	}
	var shown bytes.Buffer
	err = jsonmessage.DisplayJSONMessagesStream(resp.Body, &shown, 0, false, nil)
	resp.Body.Close()
	var jerr *jsonmessage.JSONError
	if !errors.As(err, &jerr) || jerr.Message != "disk full" || !strings.Contains(shown.String(), "Loaded image: first:latest") {
		t.Errorf("load half: %v, shown %q", err, shown.String())
	}

	rc, err := env.cli.ImageSave(ctx, []string{"busybox:latest", "localhost:5000/x:1"})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "archive of busybox:latest,localhost:5000/x:1" {
		t.Errorf("save %q", data)
	}
	if _, err := env.cli.ImageSave(ctx, []string{"ghost"}); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image: ghost") {
		t.Errorf("save missing: %v", err)
	}
	r, body := env.do(t, http.MethodGet, "/v1.51/images/localhost:5000/x:1/get", nil)
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "application/x-tar" || body != "archive of localhost:5000/x:1" {
		t.Errorf("save one: %d %q", r.StatusCode, body)
	}
}

func TestImageNamesWithSlashesAndPorts(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	for _, ref := range []string{"busybox:latest", "docker.io/library/busybox:latest", "localhost:5000/x:1"} {
		img, err := env.cli.ImageInspect(ctx, ref)
		if err != nil || len(img.RepoTags) != 1 || img.RepoTags[0] != ref {
			t.Errorf("inspect %s: %+v %v", ref, img.RepoTags, err)
		}
		hist, err := env.cli.ImageHistory(ctx, ref)
		if err != nil || len(hist) != 2 {
			t.Errorf("history %s: %d %v", ref, len(hist), err)
		}
	}
	if _, err := env.cli.ImageInspect(ctx, "nope/x:1"); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such image: nope/x:1") {
		t.Errorf("inspect missing: %v", err)
	}

	if err := env.cli.ImageTag(ctx, "localhost:5000/x:1", "localhost:5000/a/b:2"); err != nil {
		t.Fatal(err)
	}
	if tags := env.images.tags; len(tags) != 1 || tags[0] != [2]string{"localhost:5000/x:1", "localhost:5000/a/b:2"} {
		t.Errorf("tags %q", tags)
	}
	if r, body := env.do(t, http.MethodPost, "/images/busybox:latest/tag", nil); r.StatusCode != 400 {
		t.Errorf("tag without repo: %d %s", r.StatusCode, body)
	}

	deleted, err := env.cli.ImageRemove(ctx, "localhost:5000/a/b:2", image.RemoveOptions{Force: true})
	if err != nil || len(deleted) != 1 || deleted[0].Untagged != "localhost:5000/a/b:2" {
		t.Errorf("remove: %+v %v", deleted, err)
	}
	if env.images.removeOpts != [2]bool{true, true} { // the SDK asks for noprune unless PruneChildren
		t.Errorf("remove options %v", env.images.removeOpts)
	}
	if _, err := env.cli.ImageRemove(ctx, "localhost:5000/a/b:2", image.RemoveOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("remove twice: %v", err)
	}
}

func TestImageListAndPrune(t *testing.T) {
	env := startServer(t)
	ctx := ctxT(t)

	list, err := env.cli.ImageList(ctx, image.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("reference", "busybox*"), filters.Arg("dangling", "false"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].RepoTags[0] != "busybox:latest" {
		t.Errorf("list %+v", list)
	}
	if !env.images.listAll || !env.images.listF.ExactMatch("dangling", "false") || env.images.listF.Get("reference")[0] != "busybox*" {
		t.Errorf("list got all=%v filters %v", env.images.listAll, env.images.listF)
	}
	if r, body := env.do(t, http.MethodGet, "/images/json?filters=%7Bnot-json", nil); r.StatusCode != 400 {
		t.Errorf("bad filters: %d %s", r.StatusCode, body)
	}
	// An empty list is [], not null.
	if r, body := env.do(t, http.MethodGet, `/images/json?filters={"reference":{"nothing":true}}`, nil); r.StatusCode != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("empty list: %d %q", r.StatusCode, body)
	}

	report, err := env.cli.ImagesPrune(ctx, filters.NewArgs(filters.Arg("until", "24h")))
	if err != nil || report.SpaceReclaimed != 99 || len(report.ImagesDeleted) != 1 || !env.images.pruneF.ExactMatch("until", "24h") {
		t.Errorf("prune %+v %v, filters %v", report, err, env.images.pruneF)
	}
}
