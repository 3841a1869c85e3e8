package build

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/ctxsync"
	"github.com/moby/patternmatcher"
)

// manifestOf lists dir as berth build does, with a scan time past the racy window of its files.
func manifestOf(t *testing.T, dir string) ctxsync.Manifest {
	t.Helper()
	df, err := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := ctxsync.Manifest{Version: ctxsync.Version, ScanStart: time.Now().Add(time.Minute).UnixNano(), Dockerfile: df}
	pm, _ := patternmatcher.New(nil)
	err = ctxsync.Walk(dir, pm, nil, func(p string, fi fs.FileInfo) error {
		e, err := ctxsync.EntryOf(p, filepath.Join(dir, p), fi)
		m.Entries = append(m.Entries, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tarOf is the tar of the paths of dir named (all of them when names is nil), as berth build sends it.
func tarOf(t *testing.T, dir string, m ctxsync.Manifest, names []string) io.Reader {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range m.Entries {
		if names == nil || want[e.Path] {
			if err := archive.WriteEntry(tw, filepath.Join(dir, e.Path), e.Path, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	tw.Close()
	return &buf
}

func TestSyncedContext(t *testing.T) {
	s, _, _ := newTestService(t)
	ctx := context.Background()
	dir := t.TempDir()
	old := time.Unix(1000, 0)
	for p, content := range map[string]string{"Dockerfile": "FROM busybox\nCOPY . /all\n", "a.txt": "one", "sub/b.txt": "bee"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644)
		os.Chtimes(filepath.Join(dir, p), old, old)
	}
	os.Chtimes(filepath.Join(dir, "sub"), old, old)

	build := func(m ctxsync.Manifest, names []string) string {
		t.Helper()
		ans, err := s.SyncContext(ctx, "ctx1", m)
		if err != nil {
			t.Fatal(err)
		}
		if names == nil {
			names = ans.Need
		} else if strings.Join(ans.Need, ",") != strings.Join(names, ",") {
			t.Fatalf("need %q, want %q", ans.Need, names)
		}
		res, err := s.Build(ctx, tarOf(t, dir, m, names), Options{SyncSession: ans.Session}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	m := manifestOf(t, dir)
	first := build(m, []string{"Dockerfile", "a.txt", "sub", "sub/b.txt"})
	plain, err := s.Build(ctx, tarOf(t, dir, m, nil), Options{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if plain.ID != first {
		t.Fatalf("tar upload built %s, the synced context %s", plain.ID, first)
	}
	if again := build(m, []string{}); again != first {
		t.Fatalf("unchanged rebuild %s, first %s", again, first)
	}

	// Two syncs of different states before either builds: each build gets its own tree.
	ans1, err := s.SyncContext(ctx, "ctx1", m)
	if err != nil || len(ans1.Need) != 0 {
		t.Fatalf("sync: %v %q", err, ans1.Need)
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two"), 0o644)
	m2 := manifestOf(t, dir)
	second := build(m2, []string{"a.txt"})
	if second == first {
		t.Fatal("a changed file built the same image")
	}
	res, err := s.Build(ctx, tarOf(t, dir, m, []string{}), Options{SyncSession: ans1.Session}, io.Discard)
	if err != nil || res.ID != first {
		t.Fatalf("the older session built %s (%v), want %s", res.ID, err, first)
	}

	// Bad uploads and sessions.
	ans, err := s.SyncContext(ctx, "ctx1", m2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Build(ctx, tarOf(t, dir, m2, []string{"a.txt"}), Options{SyncSession: ans.Session}, io.Discard); err == nil || !strings.Contains(err.Error(), "not asked for") {
		t.Fatalf("an unasked file: %v", err)
	}
	if _, err := s.Build(ctx, tarOf(t, dir, m2, nil), Options{SyncSession: "nope"}, io.Discard); err == nil || !strings.Contains(err.Error(), "unknown or expired") {
		t.Fatalf("an unknown session: %v", err)
	}
	if _, err := s.SyncContext(ctx, "../x", m2); err == nil {
		t.Fatal("a bad context id was accepted")
	}
	m2.Version = 99
	if _, err := s.SyncContext(ctx, "ctx1", m2); err == nil {
		t.Fatal("an unknown version was accepted")
	}
	// Everything idle is pruned.
	ids, _ := s.synced.prune(time.Time{})
	if len(ids) != 1 || ids[0] != "context:ctx1" {
		t.Fatalf("pruned %q", ids)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.Root, "synced", "ctx1")); !os.IsNotExist(err) {
		t.Fatalf("the pruned tree is still there: %v", err)
	}
}
