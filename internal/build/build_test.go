package build

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	bolt "go.etcd.io/bbolt"
)

// fakeImages keeps images in memory; an image's ID digests its parent, config, history and layer, so
// equal steps give equal IDs as the real store's do.
type fakeImages struct {
	t      *testing.T
	images map[string]Image
	layers map[string][]tarEntry // image ID -> the entries of its own layer
	tags   map[string]string
}

type tarEntry struct {
	Name string
	Mode int64
	Uid  int
	Data string
}

func newFakeImages(t *testing.T) *fakeImages {
	f := &fakeImages{t: t, images: map[string]Image{}, layers: map[string][]tarEntry{}, tags: map[string]string{}}
	base := Image{ID: "sha256:base", Created: time.Unix(1000, 0)}
	base.Config.Config.Env = []string{"PATH=/bin"}
	f.images[base.ID] = base
	f.tags["docker.io/library/busybox:latest"] = base.ID
	return f
}

func (f *fakeImages) Get(_ context.Context, ref string) (Image, error) {
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	if n, err := normaliseTag(ref); err == nil {
		if id, ok := f.tags[n]; ok {
			return f.images[id], nil
		}
	}
	return Image{}, errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
}

func (f *fakeImages) WriteChild(_ context.Context, c Child) (string, error) {
	var ents []tarEntry
	if c.Layer != nil {
		tr := tar.NewReader(c.Layer)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return "", err
			}
			data, _ := io.ReadAll(tr)
			ents = append(ents, tarEntry{hdr.Name, hdr.Mode, hdr.Uid, string(data)})
		}
	}
	b, _ := json.Marshal([]any{c.Parent, c.Config, c.CreatedBy, c.Created.Unix(), ents})
	sum := sha256.Sum256(b)
	id := "sha256:" + hex.EncodeToString(sum[:])
	img := Image{ID: id, Created: c.Created}
	img.Config.Config = c.Config
	f.images[id] = img
	f.layers[id] = ents
	return id, nil
}

func (f *fakeImages) Tag(_ context.Context, id, ref string) error { f.tags[ref] = id; return nil }

func (f *fakeImages) OpenLayer(context.Context, string) (io.ReadCloser, error) {
	return nil, errdefs.NotFound(fmt.Errorf("no layers here"))
}

// Mount shows an empty tree: the fake's images have no files.
func (f *fakeImages) Mount(context.Context, string) (string, func(), error) {
	dir := f.t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("app:x:1001:1002::/:/bin/sh\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "usr", "bin"), 0o755)
	os.Symlink("usr/bin", filepath.Join(dir, "bin"))
	os.Symlink("/etc/../../usr", filepath.Join(dir, "u"))
	return dir, func() {}, nil
}

// fakeRunner records RUN commands and "runs" them by writing an empty layer.
type fakeRunner struct {
	cmds [][]string
	envs [][]string
	exit int
}

func (r *fakeRunner) Run(_ context.Context, req RunRequest, commit func(io.Reader) error) (int, error) {
	r.cmds = append(r.cmds, req.Cmd)
	r.envs = append(r.envs, req.Env)
	if r.exit != 0 {
		return r.exit, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "ran", Typeflag: tar.TypeReg, ModTime: time.Now()})
	tw.Close()
	return 0, commit(&buf)
}

func newTestService(t *testing.T) (*Service, *fakeImages, *fakeRunner) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	imgs, run := newFakeImages(t), &fakeRunner{}
	s, err := New(Config{Root: t.TempDir(), DB: db, Images: imgs, Runner: run})
	if err != nil {
		t.Fatal(err)
	}
	return s, imgs, run
}

// contextTarOf makes a context tar from name -> content.
func contextTarOf(files map[string]string) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(500, 0)})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	return &buf
}

func str(s string) *string { return &s }

func TestBuildStagesArgsAndConfig(t *testing.T) {
	s, imgs, run := newTestService(t)
	df := `ARG IMG=busybox
FROM $IMG AS base
ARG V=1
ENV A=$V
RUN echo $A

FROM scratch AS unused
RUN never

FROM base
COPY --chown=app --chmod=640 f.txt /dst/
WORKDIR sub
EXPOSE 80
ENTRYPOINT ["/e"]
`
	var out bytes.Buffer
	res, err := s.Build(context.Background(), contextTarOf(map[string]string{"Dockerfile": df, "f.txt": "x"}),
		Options{Tags: []string{"out"}, BuildArgs: map[string]*string{"V": str("2"), "UNUSED": str("u")}}, &out)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out.String())
	}
	if len(run.cmds) != 1 || !slices.Equal(run.cmds[0], []string{"/bin/sh", "-c", "echo $A"}) {
		t.Fatalf("RUN commands %v (the unused stage must be skipped)", run.cmds)
	}
	if !slices.Contains(run.envs[0], "V=2") || !slices.Contains(run.envs[0], "A=2") {
		t.Fatalf("RUN env %v", run.envs[0])
	}
	img := imgs.images[res.ID]
	cfg := img.Config.Config
	if !slices.Contains(cfg.Env, "A=2") || slices.Contains(cfg.Env, "V=2") || cfg.WorkingDir == "" || cfg.WorkingDir != "/sub" {
		t.Fatalf("config %+v", cfg)
	}
	if _, ok := cfg.ExposedPorts["80/tcp"]; !ok || !slices.Equal(cfg.Entrypoint, []string{"/e"}) {
		t.Fatalf("config %+v", cfg)
	}
	if imgs.tags["docker.io/library/out:latest"] != res.ID {
		t.Fatalf("tags %v", imgs.tags)
	}
	// The COPY layer: the destination directory and the file, owned by app's IDs, mode from --chmod.
	var copied *tarEntry
	for id, ents := range imgs.layers {
		for i, e := range ents {
			if e.Name == "dst/f.txt" {
				copied = &imgs.layers[id][i]
			}
		}
	}
	if copied == nil || copied.Mode != 0o640 || copied.Uid != 1001 || copied.Data != "x" {
		t.Fatalf("copied entry %+v", copied)
	}
	for _, want := range []string{"Step 1/10 : ARG IMG=busybox", "Step 2/10 : FROM $IMG AS base", "Successfully built", "Successfully tagged out:latest", "[Warning] One or more build-args [UNUSED] were not consumed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// The same build again: every step from the cache, the same image.
	out.Reset()
	res2, err := s.Build(context.Background(), contextTarOf(map[string]string{"Dockerfile": df, "f.txt": "x"}),
		Options{BuildArgs: map[string]*string{"V": str("2")}}, &out)
	if err != nil || res2.ID != res.ID || len(run.cmds) != 1 {
		t.Fatalf("rebuild: %v %s %s (runs %d)\n%s", err, res2.ID, res.ID, len(run.cmds), out.String())
	}
	if n := strings.Count(out.String(), "Using cache"); n != 7 {
		t.Fatalf("%d cache hits, want 7:\n%s", n, out.String())
	}
	// Another file content misses from the COPY on.
	out.Reset()
	res3, err := s.Build(context.Background(), contextTarOf(map[string]string{"Dockerfile": df, "f.txt": "y"}),
		Options{BuildArgs: map[string]*string{"V": str("2")}}, &out)
	if err != nil || res3.ID == res.ID || strings.Count(out.String(), "Using cache") != 3 {
		t.Fatalf("changed file: %v\n%s", err, out.String())
	}
}

func TestBuildErrorsUnit(t *testing.T) {
	cases := []struct {
		name, df string
		files    map[string]string
		opts     Options
		exit     int
		want     string
	}{
		{name: "no dockerfile", files: map[string]string{"x": ""}, want: "Cannot locate specified Dockerfile: Dockerfile"},
		{name: "unknown instruction", df: "FROM busybox\nNOPE x\n", want: "unknown instruction: NOPE"},
		{name: "failing run", df: "FROM busybox\nRUN false\n", exit: 3, want: "The command '/bin/sh -c false' returned a non-zero code: 3"},
		{name: "unknown target", df: "FROM busybox\n", opts: Options{Target: "x"}, want: "failed to reach build target x in Dockerfile"},
		{name: "outside context", df: "FROM busybox\nCOPY ../x /x\n", want: "forbidden path outside the build context: ../x"},
		{name: "missing file", df: "FROM busybox\nCOPY nothere /x\n", want: "file not found in build context or excluded by .dockerignore"},
		{name: "ignored file", df: "FROM busybox\nCOPY sec /x\n", files: map[string]string{".dockerignore": "sec", "sec": "s"}, want: "excluded by .dockerignore"},
		{name: "glob without match", df: "FROM busybox\nCOPY *.none /x/\n", want: "no source files were specified"},
		{name: "unknown image", df: "FROM nosuchimage\n", want: "pull access denied for nosuchimage"},
		{name: "bad tag", df: "FROM busybox\n", opts: Options{Tags: []string{"Bad:Tag:x"}}, want: "invalid reference format"},
		{name: "unknown chown user", df: "FROM busybox\nCOPY --chown=nobody2 Dockerfile /x\n", want: "can't find uid for user nobody2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, imgs, run := newTestService(t)
			run.exit = tc.exit
			files := map[string]string{}
			for k, v := range tc.files {
				files[k] = v
			}
			if tc.df != "" {
				files["Dockerfile"] = tc.df
			}
			_, err := s.Build(context.Background(), contextTarOf(files), tc.opts, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if tc.exit != 0 {
				var se *StepError
				if !errors.As(err, &se) || se.ExitCode() != tc.exit {
					t.Fatalf("exit code not carried: %v", err)
				}
			}
			if len(imgs.tags) != 1 {
				t.Fatalf("a failed build tagged: %v", imgs.tags)
			}
		})
	}
}

func TestDockerfileAloneAndHeredocs(t *testing.T) {
	s, imgs, run := newTestService(t)
	df := "FROM busybox\nRUN <<EOF\necho one\nEOF\nCOPY <<EOF /etc/motd\nhello\nEOF\n"
	res, err := s.Build(context.Background(), strings.NewReader(df), Options{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(run.cmds[0], []string{"/bin/sh", "-c", "echo one\n"}) {
		t.Fatalf("heredoc RUN %q", run.cmds[0])
	}
	if ents := imgs.layers[res.ID]; len(ents) != 2 || ents[1].Name != "etc/motd" || ents[1].Data != "hello\n" {
		t.Fatalf("heredoc COPY layer %+v", ents)
	}
}

func TestIgnoreAndSniff(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a.log", "keep/b.log", "keep/c.txt", "drop/d.txt", "deep/x/y.log"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), nil, 0o644)
	}
	c := &buildContext{dir: dir, rootDir: dir}
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("**/*.log\n!keep/b.log\ndrop\n"), 0o644)
	var err error
	if c.root, err = os.OpenRoot(dir); err != nil {
		t.Fatal(err)
	}
	defer c.root.Close()
	if err := c.applyIgnore(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"a.log": false, "keep/b.log": true, "keep/c.txt": true, "drop": false, "deep/x/y.log": false} {
		if _, err := os.Lstat(filepath.Join(dir, p)); (err == nil) != want {
			t.Errorf("%s present=%v, want %v", p, err == nil, want)
		}
	}
	if _, isTar, _ := sniff(strings.NewReader("FROM busybox\n")); isTar {
		t.Error("a Dockerfile sniffed as a tar")
	}
	if _, isTar, _ := sniff(contextTarOf(map[string]string{"a": "b"})); !isTar {
		t.Error("a tar not recognised")
	}
}

func TestClampTimes(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "new", Typeflag: tar.TypeReg, ModTime: time.Unix(5000, 0)})
	tw.WriteHeader(&tar.Header{Name: "old", Typeflag: tar.TypeReg, ModTime: time.Unix(10, 0)})
	tw.Close()
	rc := clampTimes(&buf, time.Unix(100, 0))
	defer rc.Close()
	tr := tar.NewReader(rc)
	for _, want := range []int64{100, 10} {
		hdr, err := tr.Next()
		if err != nil || hdr.ModTime.Unix() != want {
			t.Fatalf("entry %v mtime %v, want %d", hdr, err, want)
		}
	}
}

func TestIsGitURL(t *testing.T) {
	for s, want := range map[string]bool{
		"file:///srv/repo#main:sub": true, "git://h/r": true, "git@github.com:a/b": true, "https://h/r.git#v1": true,
		"https://h/ctx.tar": false, ".": false, "/srv/repo": false,
	} {
		if IsGitURL(s) != want {
			t.Errorf("IsGitURL(%q) = %v", s, !want)
		}
	}
}

func TestDirectivesAndContinuations(t *testing.T) {
	s, _, run := newTestService(t)
	df := "# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo a `\n    b\nRUN [\"/bin/true\", \"x\"]\n"
	if _, err := s.Build(context.Background(), strings.NewReader(df), Options{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if len(run.cmds) != 2 || run.cmds[0][2] != "echo a     b" || !slices.Equal(run.cmds[1], []string{"/bin/true", "x"}) {
		t.Fatalf("commands %q", run.cmds)
	}
}

func TestAddURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", time.Unix(100, 0).UTC().Format(http.TimeFormat))
		io.WriteString(w, "remote body")
	}))
	defer srv.Close()
	s, imgs, _ := newTestService(t)
	sum := sha256.Sum256([]byte("remote body"))
	df := fmt.Sprintf("FROM busybox\nADD --checksum=sha256:%x %s/dir/file.txt /opt/\n", sum, srv.URL)
	res, err := s.Build(context.Background(), strings.NewReader(df), Options{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ents := imgs.layers[res.ID]
	if len(ents) != 2 || ents[1].Name != "opt/file.txt" || ents[1].Data != "remote body" || ents[1].Mode != 0o600 {
		t.Fatalf("layer %+v", ents)
	}
	bad := fmt.Sprintf("FROM busybox\nADD --checksum=sha256:%x %s/f /f\n", sha256.Sum256(nil), srv.URL)
	if _, err := s.Build(context.Background(), strings.NewReader(bad), Options{}, io.Discard); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("checksum mismatch: %v", err)
	}
	if _, err := s.Build(context.Background(), strings.NewReader("FROM busybox\nCOPY "+srv.URL+"/f /f\n"), Options{}, io.Discard); err == nil || !strings.Contains(err.Error(), "source can't be a URL for COPY") {
		t.Fatalf("COPY of a URL: %v", err)
	}
}

func TestCopyFollowsImageSymlinks(t *testing.T) {
	s, imgs, _ := newTestService(t)
	df := "FROM busybox\nCOPY f /bin/\nCOPY f /u/g\n"
	res, err := s.Build(context.Background(), contextTarOf(map[string]string{"Dockerfile": df, "f": "x"}), Options{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ents := range imgs.layers {
		for _, e := range ents {
			names = append(names, e.Name)
		}
	}
	slices.Sort(names)
	want := []string{"usr/", "usr/", "usr/bin/", "usr/bin/f", "usr/g"}
	if !slices.Equal(names, want) {
		t.Fatalf("layer entries %q, want %q (image %s)", names, want, res.ID)
	}
	// An ADDed archive must not smuggle in a whiteout that deletes a file of the image.
	inner := contextTarOf(map[string]string{"etc/.wh.passwd": ""}).(*bytes.Buffer).String()
	_, err = s.Build(context.Background(), contextTarOf(map[string]string{"Dockerfile": "FROM busybox\nADD a.tar /\n", "a.tar": inner}), Options{}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "reserved for layer whiteouts") {
		t.Fatalf("whiteout name: %v", err)
	}
}

func TestCopyGlobsAndDirectories(t *testing.T) {
	s, imgs, _ := newTestService(t)
	df := "FROM busybox\nCOPY *.txt sub /dst/\nCOPY one.txt /renamed\n"
	files := map[string]string{"Dockerfile": df, "one.txt": "1", "two.txt": "2", "three.md": "3", "sub/inner.txt": "i"}
	if _, err := s.Build(context.Background(), contextTarOf(files), Options{}, io.Discard); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ents := range imgs.layers {
		for _, e := range ents {
			names = append(names, e.Name)
		}
	}
	slices.Sort(names)
	want := []string{"dst/", "dst/inner.txt", "dst/one.txt", "dst/two.txt", "renamed"}
	if !slices.Equal(names, want) {
		t.Fatalf("entries %q, want %q", names, want)
	}
}
