package volume

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	bolt "go.etcd.io/bbolt"
)

func newService(t *testing.T) (*Service, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(Config{Root: filepath.Join(dir, "volumes"), DB: db})
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func TestCreateInspectRemove(t *testing.T) {
	ctx := context.Background()
	s, dir := newService(t)
	v, err := s.Create(ctx, CreateOptions{Name: "data", Labels: map[string]string{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mountpoint != filepath.Join(dir, "volumes", "data", "_data") || v.Driver != "local" || v.Labels["a"] != "1" {
		t.Errorf("created %+v", v)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("no data directory: %v", err)
	}
	// Idempotent.
	if _, err := s.Create(ctx, CreateOptions{Name: "data"}); err != nil {
		t.Fatal(err)
	}
	// Records survive a new service on the same database.
	s2, err := New(s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Inspect(ctx, "data"); err != nil || got.Labels["a"] != "1" {
		t.Fatalf("after reload: %+v %v", got, err)
	}

	s.Retain("data", "ctr1")
	err = s.Remove(ctx, "data", false)
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "remove data: volume is in use - [ctr1]") {
		t.Fatalf("remove in use: %v", err)
	}
	s.Release("data", "ctr1")
	if err := s.Remove(ctx, "data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Mountpoint); !os.IsNotExist(err) {
		t.Errorf("data left behind: %v", err)
	}
	if err := s.Remove(ctx, "data", false); !errdefs.IsNotFound(err) {
		t.Errorf("remove missing: %v", err)
	}
	if err := s.Remove(ctx, "data", true); err != nil {
		t.Errorf("force remove missing: %v", err)
	}
}

func TestCreateRejects(t *testing.T) {
	s, dir := newService(t)
	cases := []struct {
		o    CreateOptions
		want string
	}{
		{CreateOptions{Name: "a/b"}, `"a/b" includes invalid characters for a local volume name`},
		{CreateOptions{Name: "x"}, "includes invalid characters"},
		{CreateOptions{Name: "ok", Options: map[string]string{"bogus": "1"}}, `invalid option: "bogus"`},
		{CreateOptions{Name: "ok", Options: map[string]string{"type": "tmpfs"}}, `missing required option: "device"`},
		{CreateOptions{Name: "ok", Options: map[string]string{"o": "size=1m"}}, `missing required option`},
		{CreateOptions{Name: "ok", Driver: "nfs-plugin"}, `plugin "nfs-plugin" not found`},
	}
	for _, tc := range cases {
		_, err := s.Create(context.Background(), tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.o, err, tc.want)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "volumes")); len(ents) != 0 {
		t.Errorf("failed creates left %d directories", len(ents))
	}
}

func TestListAndPrune(t *testing.T) {
	ctx := context.Background()
	s, _ := newService(t)
	for _, n := range []string{"alpha", "beta", "gamma"} {
		if _, err := s.Create(ctx, CreateOptions{Name: n, Labels: map[string]string{"n": n}}); err != nil {
			t.Fatal(err)
		}
	}
	anon, _, err := s.Acquire(ctx, AcquireOptions{Ref: "c1", Anonymous: true})
	if err != nil || len(anon) != 64 {
		t.Fatalf("acquire anonymous: %q %v", anon, err)
	}
	s.Retain("beta", "c1")
	names := func(f filters.Args) []string {
		l, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range l.Volumes {
			out = append(out, v.Name)
		}
		return out
	}
	if got := names(filters.NewArgs(filters.Arg("dangling", "true"))); strings.Join(got, ",") != "alpha,gamma" {
		t.Errorf("dangling: %v", got)
	}
	if got := names(filters.NewArgs(filters.Arg("label", "n=beta"))); strings.Join(got, ",") != "beta" {
		t.Errorf("label: %v", got)
	}
	if got := names(filters.NewArgs(filters.Arg("name", "amm"))); strings.Join(got, ",") != "gamma" {
		t.Errorf("name: %v", got)
	}
	if _, err := s.List(ctx, filters.NewArgs(filters.Arg("bogus", "1"))); !errdefs.IsInvalidParameter(err) {
		t.Errorf("bad filter: %v", err)
	}
	// The anonymous volume is in use: nothing to prune by default.
	rep, err := s.Prune(ctx, filters.NewArgs())
	if err != nil || len(rep.VolumesDeleted) != 0 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	s.Release(anon, "c1")
	if err := os.WriteFile(filepath.Join(s.Path(anon), "f"), make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Prune(ctx, filters.NewArgs())
	if err != nil || strings.Join(rep.VolumesDeleted, ",") != anon || rep.SpaceReclaimed < 8192 {
		t.Fatalf("prune anonymous: %+v %v", rep, err)
	}
	rep, err = s.Prune(ctx, filters.NewArgs(filters.Arg("all", "true"), filters.Arg("label!", "n=gamma")))
	if err != nil || strings.Join(rep.VolumesDeleted, ",") != "alpha" {
		t.Fatalf("prune all: %+v %v", rep, err)
	}
}

func TestCopyUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to keep ownership")
	}
	src, dst := t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d/e"), 0o755))
	must(os.WriteFile(filepath.Join(src, "d/f"), []byte("x"), 0o600))
	must(os.Chown(filepath.Join(src, "d/f"), 1000, 2000))
	must(syscall.Chmod(filepath.Join(src, "d/e"), 0o1777))
	must(os.Link(filepath.Join(src, "d/f"), filepath.Join(src, "hard")))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "abs")))
	must(syscall.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	must(os.Chmod(src, 0o711))
	must(CopyUp(src, dst))

	st := func(p string) *syscall.Stat_t {
		var s syscall.Stat_t
		must(syscall.Lstat(filepath.Join(dst, p), &s))
		return &s
	}
	if s := st("d/f"); s.Uid != 1000 || s.Gid != 2000 || s.Mode&0o7777 != 0o600 {
		t.Errorf("d/f: %d:%d %o", s.Uid, s.Gid, s.Mode)
	}
	if s := st("d/e"); s.Mode&0o7777 != 0o1777 {
		t.Errorf("d/e mode %o", s.Mode)
	}
	if st("hard").Ino != st("d/f").Ino {
		t.Error("hard link not kept")
	}
	if l, _ := os.Readlink(filepath.Join(dst, "abs")); l != "/etc/passwd" {
		t.Errorf("symlink %q", l)
	}
	if s := st("fifo"); s.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		t.Errorf("fifo mode %o", s.Mode)
	}
	if s := st("."); s.Mode&0o7777 != 0o711 {
		t.Errorf("root mode %o", s.Mode)
	}
	// A missing source copies nothing.
	must(CopyUp(filepath.Join(src, "nope"), t.TempDir()))
}
