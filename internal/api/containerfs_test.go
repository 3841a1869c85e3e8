package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// fakeFS serves the filesystem routes; the rest of ContainerBackend is left nil (never called here).
type fakeFS struct {
	ContainerBackend
	extracted            string
	extractOpts          ExtractOptions
	commitID, commitName string
	commitOpts           CommitOptions
}

var fakeStat = container.PathStat{Name: "passwd", Size: 12, Mode: 0o644, Mtime: time.Unix(1700000000, 0).UTC()}

func (f *fakeFS) StatPath(_ context.Context, id, p string) (container.PathStat, error) {
	if p != "/etc/passwd" {
		return container.PathStat{}, errdefs.NotFound(fmt.Errorf("Could not find the file %s in container %s", p, id))
	}
	return fakeStat, nil
}

func (f *fakeFS) ArchivePath(ctx context.Context, id, p string) (io.ReadCloser, container.PathStat, error) {
	st, err := f.StatPath(ctx, id, p)
	if err != nil {
		return nil, st, err
	}
	return io.NopCloser(strings.NewReader("tar bytes")), st, nil
}

func (f *fakeFS) ExtractToDir(_ context.Context, id, p string, o ExtractOptions, src io.Reader) error {
	b, _ := io.ReadAll(src)
	f.extracted, f.extractOpts = id+":"+p+":"+string(b), o
	return nil
}

func (f *fakeFS) Changes(context.Context, string) ([]container.FilesystemChange, error) {
	return []container.FilesystemChange{{Path: "/a", Kind: container.ChangeAdd}, {Path: "/etc", Kind: container.ChangeModify}}, nil
}

func (f *fakeFS) Export(context.Context, string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("whole fs")), nil
}

func (f *fakeFS) Commit(_ context.Context, id string, o CommitOptions) (string, error) {
	if id == "gone" {
		return "", errdefs.NotFound(errors.New("No such container: gone"))
	}
	f.commitName, f.commitOpts = id, o
	return "sha256:" + strings.Repeat("ab", 32), nil
}

func fsClient(t *testing.T) (*fakeFS, *client.Client) {
	f := &fakeFS{}
	ts := httptest.NewServer(New(Config{Containers: f}).Handler())
	t.Cleanup(ts.Close)
	c, err := client.NewClientWithOpts(client.WithHost("tcp://"+strings.TrimPrefix(ts.URL, "http://")), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return f, c
}

func TestArchiveRoutes(t *testing.T) {
	f, c := fsClient(t)
	ctx := context.Background()
	st, err := c.ContainerStatPath(ctx, "c1", "/etc/passwd")
	if err != nil || st != fakeStat {
		t.Fatalf("stat: %+v %v", st, err)
	}
	if _, err := c.ContainerStatPath(ctx, "c1", "/nope"); !cerrdefs.IsNotFound(err) {
		t.Errorf("stat of a missing path: %v", err)
	}
	rc, st, err := c.CopyFromContainer(ctx, "c1", "/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != "tar bytes" || st.Name != "passwd" {
		t.Errorf("get archive: %q %+v", body, st)
	}
	_, _, err = c.CopyFromContainer(ctx, "c1", "/nope")
	if err == nil || !strings.Contains(err.Error(), "Could not find the file /nope in container c1") {
		t.Errorf("get of a missing path: %v", err)
	}
	if err := c.CopyToContainer(ctx, "c1", "/tmp", strings.NewReader("in"), container.CopyToContainerOptions{CopyUIDGID: true}); err != nil {
		t.Fatal(err)
	}
	if f.extracted != "c1:/tmp:in" || !f.extractOpts.NoOverwriteDirNonDir || !f.extractOpts.CopyUIDGID {
		t.Errorf("put archive: %q %+v", f.extracted, f.extractOpts)
	}
}

func TestChangesExportCommitRoutes(t *testing.T) {
	f, c := fsClient(t)
	ctx := context.Background()
	changes, err := c.ContainerDiff(ctx, "c1")
	if err != nil || len(changes) != 2 || changes[0].Kind.String() != "A" || changes[1].Path != "/etc" {
		t.Errorf("diff: %+v %v", changes, err)
	}
	rc, err := c.ContainerExport(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "whole fs" {
		t.Errorf("export: %q", b)
	}
	resp, err := c.ContainerCommit(ctx, "c1", container.CommitOptions{Reference: "repo/x:v1", Comment: "m", Author: "a", Changes: []string{"CMD x", "ENV A=1"}, Pause: false})
	if err != nil || !strings.HasPrefix(resp.ID, "sha256:") {
		t.Fatalf("commit: %+v %v", resp, err)
	}
	o := f.commitOpts
	if f.commitName != "c1" || o.Ref != "docker.io/repo/x:v1" || o.Comment != "m" || o.Author != "a" || len(o.Changes) != 2 || o.Pause {
		t.Errorf("commit options: %s %+v", f.commitName, o)
	}
	if _, err := c.ContainerCommit(ctx, "gone", container.CommitOptions{}); !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such container: gone") {
		t.Errorf("commit of a missing container: %v", err)
	}
}

func TestCommitPausesByDefault(t *testing.T) {
	f, _ := fsClient(t)
	srv := httptest.NewServer(New(Config{Containers: f}).Handler())
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/v1.51/commit?container=c1", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 || !f.commitOpts.Pause || f.commitOpts.Config != nil {
		t.Errorf("status %d, options %+v", resp.StatusCode, f.commitOpts)
	}
}

func TestFilesystemRoutesWithoutBackend(t *testing.T) {
	srv := httptest.NewServer(New(Config{}).Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/containers/c1/changes")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 501 {
		t.Errorf("status %d", resp.StatusCode)
	}
}
