package integration

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestBuildCacheAndReproducible(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag, tag+":sde")
	dir := buildContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN echo built > /built\nCOPY b.txt /b.txt\nRUN cat /a.txt /b.txt > /ab\n",
		"a.txt":      "A\n",
		"b.txt":      "B\n",
	})
	first := legacyBuild(t, dir, "-t", tag, ".")
	if first.code != 0 {
		t.Fatalf("first build: %s", first)
	}
	id1 := mustDocker(t, "inspect", "-f", "{{.Id}}", tag)
	// Unchanged: every step after FROM comes from the cache, also across a daemon restart.
	stopDaemon(syscall.SIGTERM)
	if err := startDaemon(); err != nil {
		t.Fatal(err)
	}
	again := legacyBuild(t, dir, "-t", tag, ".")
	if again.code != 0 || strings.Count(again.stdout, "Using cache") != 4 {
		t.Fatalf("rebuild should hit the cache 4 times: %s", again)
	}
	if id := mustDocker(t, "inspect", "-f", "{{.Id}}", tag); id != id1 {
		t.Fatalf("cached rebuild gave %s, want %s", id, id1)
	}
	// A touched file (same content) still hits; a changed one rebuilds from its first reader on.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "b.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	if r := legacyBuild(t, dir, "-t", tag, "."); strings.Count(r.stdout, "Using cache") != 4 {
		t.Fatalf("an mtime change should not miss the cache: %s", r)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("B2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := legacyBuild(t, dir, "-t", tag, ".")
	if r.code != 0 || strings.Count(r.stdout, "Using cache") != 2 {
		t.Fatalf("changing b.txt should rebuild steps 4-5 only: %s", r)
	}
	if out := mustDocker(t, "run", "--rm", tag, "cat", "/ab"); out != "A\nB2" {
		t.Fatalf("/ab = %q", out)
	}
	// Two --no-cache builds of the same context: the same image ID.
	n1 := legacyBuild(t, dir, "--no-cache", "-q", ".")
	n2 := legacyBuild(t, dir, "--no-cache", "-q", ".")
	if n1.code != 0 || n2.code != 0 {
		t.Fatalf("no-cache builds: %s\n%s", n1, n2)
	}
	if strings.TrimSpace(n1.stdout) != strings.TrimSpace(n2.stdout) || !strings.HasPrefix(strings.TrimSpace(n1.stdout), "sha256:") {
		t.Fatalf("--no-cache builds differ: %q vs %q", n1.stdout, n2.stdout)
	}
	// SOURCE_DATE_EPOCH stamps the image.
	if e := legacyBuild(t, dir, "--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-t", tag+":sde", "."); e.code != 0 {
		t.Fatalf("build with SOURCE_DATE_EPOCH: %s", e)
	}
	if c := mustDocker(t, "inspect", "-f", "{{.Created}}", tag+":sde"); !strings.HasPrefix(c, "2023-11-14T22:13:20") {
		t.Fatalf("created %s", c)
	}
}

func TestBuildMultiStageTargetIgnoreAdd(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag, tag+":first")
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	tw.WriteHeader(&tar.Header{Name: "pkg/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "pkg/data.txt", Typeflag: tar.TypeReg, Mode: 0o600, Size: 5})
	tw.Write([]byte("data\n"))
	tw.Close()
	dir := buildContext(t, map[string]string{
		"Dockerfile": `ARG BASE=busybox
FROM ${BASE} AS first
ARG WHO=nobody
RUN echo "hi $WHO" > /greet
COPY <<EOF /heredoc.txt
from a heredoc
EOF

FROM busybox AS unused
RUN exit 3

FROM busybox
COPY --from=first /greet /greet
COPY --chown=1234:2345 --chmod=751 app/ /app/
ADD bundle.tar /opt/
RUN <<EOF
echo from-run-heredoc > /run.txt
EOF
`,
		"app/keep.txt":     "keep\n",
		"app/skip.log":     "skip\n",
		"app/sub/x.log":    "x\n",
		"app/sub/want.log": "want\n",
		".dockerignore":    "**/*.log\n!app/sub/want.log\n",
		"bundle.tar":       tarball.String(),
	})
	r := legacyBuild(t, dir, "--build-arg", "WHO=tester", "-t", tag, ".")
	if r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	if strings.Contains(r.stdout, "exit 3") {
		t.Fatalf("the unused stage was built:\n%s", r.stdout)
	}
	out := mustDocker(t, "run", "--rm", tag, "sh", "-c",
		"cat /greet /opt/pkg/data.txt /run.txt; ls /app; ls /app/sub; stat -c '%u:%g %a' /app/keep.txt")
	want := "hi tester\ndata\nfrom-run-heredoc\nkeep.txt\nsub\nwant.log\n1234:2345 751"
	if out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	if r := legacyBuild(t, dir, "--target", "first", "-t", tag+":first", "."); r.code != 0 {
		t.Fatalf("--target: %s", r)
	}
	if out := mustDocker(t, "run", "--rm", tag+":first", "cat", "/heredoc.txt"); out != "from a heredoc" {
		t.Fatalf("heredoc copy: %q", out)
	}
}

func TestBuildMetadataInstructions(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag, tag+"-child")
	dir := buildContext(t, map[string]string{"Dockerfile": `FROM busybox
LABEL a=b
EXPOSE 8080/tcp 53/udp
VOLUME /data
USER 1000:1000
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=5s CMD true
ONBUILD RUN echo triggered
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/echo"]
CMD ["x"]
`})
	r := legacyBuild(t, dir, "-t", tag, "--label", "from=cli", ".")
	if r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	got := mustDocker(t, "inspect", "-f", "{{.Config.Labels}} {{.Config.ExposedPorts}} {{.Config.Volumes}} {{.Config.User}} {{.Config.StopSignal}} {{.Config.Healthcheck.Test}} {{.Config.OnBuild}} {{.Config.Shell}} {{.Config.Entrypoint}} {{.Config.Cmd}}", tag)
	want := "map[a:b from:cli] map[53/udp:{} 8080/tcp:{}] map[/data:{}] 1000:1000 SIGUSR1 [CMD-SHELL true] [RUN echo triggered] [/bin/sh -ec] [/bin/echo] [x]"
	if got != want {
		t.Fatalf("config:\n got %s\nwant %s", got, want)
	}
	// The ONBUILD trigger runs in a build FROM the image.
	child := buildContext(t, map[string]string{"Dockerfile": "FROM " + tag + "\n"})
	if r := legacyBuild(t, child, "-t", tag+"-child", "."); r.code != 0 || !strings.Contains(r.stdout, "triggered") {
		t.Fatalf("onbuild: %s", r)
	}
	if h := mustDocker(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag); !strings.Contains(h, "#(nop)  LABEL a=b") {
		t.Fatalf("history:\n%s", h)
	}
}

func TestBuildErrors(t *testing.T) {
	tag := uniqueName(t)
	cases := []struct {
		name  string
		files map[string]string
		args  []string
		want  string
		code  int
	}{
		{"missing dockerfile", map[string]string{"x": ""}, nil, "", 1},
		{"unknown instruction", map[string]string{"Dockerfile": "FROM busybox\nFROBNICATE x\n"}, nil, "unknown instruction: FROBNICATE", 1},
		{"failing run", map[string]string{"Dockerfile": "FROM busybox\nRUN false\n"}, nil, "The command '/bin/sh -c false' returned a non-zero code: 1", 1},
		{"exit code passes", map[string]string{"Dockerfile": "FROM busybox\nRUN exit 7\n"}, nil, "returned a non-zero code: 7", 7},
		{"outside context", map[string]string{"Dockerfile": "FROM busybox\nCOPY ../etc/passwd /x\n"}, nil, "outside the build context", 1},
		{"ignored file", map[string]string{"Dockerfile": "FROM busybox\nCOPY secret /x\n", "secret": "s", ".dockerignore": "secret\n"}, nil, "excluded by .dockerignore", 1},
		{"unknown stage", map[string]string{"Dockerfile": "FROM busybox\n"}, []string{"--target", "nope"}, "failed to reach build target nope", 1},
		{"symlink escape", map[string]string{"Dockerfile": "FROM busybox\nCOPY link/passwd /x\n"}, nil, "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := buildContext(t, tc.files)
			if tc.name == "symlink escape" {
				if err := os.Symlink("/etc", filepath.Join(dir, "link")); err != nil {
					t.Fatal(err)
				}
			}
			r := legacyBuild(t, dir, append(append([]string{}, tc.args...), "-t", tag, ".")...)
			if r.code != tc.code || !strings.Contains(r.stderr+r.stdout, tc.want) {
				t.Fatalf("want exit %d and %q: %s", tc.code, tc.want, r)
			}
			if docker(t, "image", "inspect", tag).code == 0 {
				_ = dockerCmd("rmi", "-f", tag).Run()
				t.Fatalf("a failed build tagged %s", tag)
			}
			if ps := mustDocker(t, "ps", "-aq", "--filter", "label=berth.build"); ps != "" {
				t.Fatalf("intermediate containers left: %s", ps)
			}
		})
	}
}

func TestBerthBuild(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag+":a", tag+":b")
	dir := buildContext(t, map[string]string{
		"build.Dockerfile": "FROM busybox\nARG V=default\nRUN echo $V > /v\n",
	})
	iid := filepath.Join(t.TempDir(), "iid")
	r := berthBuild(t, dir, "-f", "build.Dockerfile", "-t", tag+":a", "-t", tag+":b", "--build-arg", "V=given", "--iidfile", iid, ".")
	if r.code != 0 || !strings.Contains(r.stdout, "[3/3] RUN echo $V > /v") || !strings.Contains(r.stdout, "Successfully tagged "+tag+":b") {
		t.Fatalf("berth build: %s", r)
	}
	id, _ := os.ReadFile(iid)
	if got := mustDocker(t, "inspect", "-f", "{{.Id}}", tag+":a"); got != string(id) {
		t.Fatalf("iidfile %q, image %q", id, got)
	}
	if out := mustDocker(t, "run", "--rm", tag+":b", "cat", "/v"); out != "given" {
		t.Fatalf("/v = %q", out)
	}
	again := berthBuild(t, dir, "-f", "build.Dockerfile", "--build-arg", "V=given", "-q", ".")
	if again.code != 0 || strings.TrimSpace(again.stdout) != string(id) {
		t.Fatalf("quiet rebuild: %s", again)
	}
	cached := berthBuild(t, dir, "-f", "build.Dockerfile", "--build-arg", "V=given", ".")
	if strings.Count(cached.stdout, "CACHED") != 2 {
		t.Fatalf("want 2 CACHED steps: %s", cached)
	}
	// A Dockerfile alone on stdin.
	if r := runCmd(t, berthCmd("build", "-q", "-"), "FROM busybox\nCMD [\"true\"]\n"); r.code != 0 || !strings.HasPrefix(r.stdout, "sha256:") {
		t.Fatalf("build from stdin: %s", r)
	}
	bad := runCmd(t, berthCmd("build", "-"), "FROM busybox\nRUN exit 4\n")
	if bad.code != 4 || !strings.Contains(bad.stderr, "returned a non-zero code: 4") {
		t.Fatalf("failing build: %s", bad)
	}
}

func TestBuildPruneAndGitContext(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag, tag+":git")
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n"})
	if r := legacyBuild(t, dir, "-t", tag, "."); r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	untagged := legacyBuild(t, dir, "-q", "--build-arg", "X=1", "--no-cache", "--label", "x=1", ".")
	if untagged.code != 0 {
		t.Fatalf("untagged build: %s", untagged)
	}
	untaggedID := strings.TrimSpace(untagged.stdout)
	r := berth(t, "builder", "prune", "-f")
	if r.code != 0 || !strings.Contains(r.stdout, "Deleted build cache objects:") {
		t.Fatalf("builder prune: %s", r)
	}
	if docker(t, "image", "inspect", untaggedID).code == 0 {
		t.Fatalf("the untagged build result survived the prune")
	}
	if mustDocker(t, "run", "--rm", tag, "cat", "/two") != "two" {
		t.Fatal("the tagged image lost its content")
	}
	if again := legacyBuild(t, dir, "-t", tag, "."); again.code != 0 || strings.Contains(again.stdout, "Using cache") {
		t.Fatalf("a build after prune should not hit the cache: %s", again)
	}
	// docker builder prune reaches the same endpoint.
	if r := docker(t, "builder", "prune", "-f"); r.code != 0 {
		t.Fatalf("docker builder prune: %s", r)
	}

	// A git repository as the context, by file:// URL with a ref and a subdirectory.
	repo := t.TempDir()
	gitRun := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.email=t@t", "-c", "user.name=t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitRun("init", "-q", "-b", "main")
	os.MkdirAll(filepath.Join(repo, "sub"), 0o755)
	os.WriteFile(filepath.Join(repo, "sub", "Dockerfile"), []byte("FROM busybox\nCOPY msg /msg\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "sub", "msg"), []byte("from git\n"), 0o644)
	gitRun("add", ".")
	gitRun("commit", "-q", "-m", "one")
	gitRun("tag", "v1")
	os.WriteFile(filepath.Join(repo, "sub", "msg"), []byte("later\n"), 0o644)
	gitRun("commit", "-qam", "two")
	if r := berth(t, "build", "-t", tag+":git", "file://"+repo+"#v1:sub"); r.code != 0 {
		t.Fatalf("git build: %s", r)
	}
	if out := mustDocker(t, "run", "--rm", tag+":git", "cat", "/msg"); out != "from git" {
		t.Fatalf("/msg = %q", out)
	}
}

func TestBuildCacheFrom(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag)
	dir := buildContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY f /f\nRUN echo cache-from > /r\nENV K=v\n",
		"f":          "content\n",
	})
	if r := legacyBuild(t, dir, "-t", tag, "."); r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	id := mustDocker(t, "inspect", "-f", "{{.Id}}", tag)
	saved := filepath.Join(t.TempDir(), "img.tar")
	mustDocker(t, "save", "-o", saved, tag)
	mustDocker(t, "rmi", tag)
	mustDocker(t, "load", "-i", saved)
	// The loaded image has no local cache entries; --cache-from finds every step in its history.
	r := legacyBuild(t, dir, "--cache-from", tag, "-t", tag, ".")
	if r.code != 0 || strings.Count(r.stdout, "Using cache") != 3 || strings.Contains(r.stdout, "Running in") {
		t.Fatalf("build with --cache-from: %s", r)
	}
	if got := mustDocker(t, "inspect", "-f", "{{.Id}}", tag); got != id {
		t.Fatalf("--cache-from build gave %s, want %s", got, id)
	}
}

func TestBuildContextForms(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag+":tar", tag+":gz", tag+":net")
	files := map[string]string{
		"Dockerfile": "FROM busybox\nCOPY --exclude=*.tmp d/ /d/\nRUN ls /d > /list\n",
		"d/a.txt":    "a",
		"d/b.tmp":    "b",
	}
	dir := buildContext(t, files)
	// A context tar on stdin, through berth.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range []string{"Dockerfile", "d/a.txt", "d/b.tmp"} {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	if r := runCmd(t, berthCmd("build", "-t", tag+":tar", "-"), buf.String()); r.code != 0 || !strings.Contains(r.stdout, "Image ID: sha256:") {
		t.Fatalf("tar on stdin: %s", r)
	}
	if out := mustDocker(t, "run", "--rm", tag+":tar", "cat", "/list"); out != "a.txt" {
		t.Fatalf("--exclude: /list = %q", out)
	}
	// A gzip-compressed context, as docker build --compress sends it.
	if r := legacyBuild(t, dir, "--compress", "-t", tag+":gz", "."); r.code != 0 {
		t.Fatalf("--compress: %s", r)
	}
	// A Dockerfile from stdin with a context directory, and ADD of a URL (the daemon downloads it).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "over http\n") }))
	defer srv.Close()
	cmd := berthCmd("build", "-f", "-", "-t", tag+":gz", ".")
	cmd.Dir = dir
	if r := runCmd(t, cmd, "FROM busybox\nCOPY d/a.txt /a\nADD "+srv.URL+"/remote.txt /dl/\n"); r.code != 0 {
		t.Fatalf("-f - with ADD <url>: %s", r)
	}
	if out := mustDocker(t, "run", "--rm", tag+":gz", "cat", "/a", "/dl/remote.txt"); out != "aover http" {
		t.Fatalf("files: %q", out)
	}
	// RUN with --network none sees only the loopback interface.
	netDir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN ls /sys/class/net > /ifs\n"})
	if r := berthBuild(t, netDir, "--network", "none", "--no-cache", "-t", tag+":net", "."); r.code != 0 {
		t.Fatalf("--network none: %s", r)
	}
	if out := mustDocker(t, "run", "--rm", tag+":net", "cat", "/ifs"); out != "lo" {
		t.Fatalf("interfaces in RUN: %q", out)
	}
}

func TestBuildRunLimits(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag+":berth", tag+":docker")
	file := "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	if cgroupV2() {
		file = "/sys/fs/cgroup/memory.max"
	}
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN cat " + file + " > /lim\n"})
	if r := berthBuild(t, dir, "--no-cache", "-m", "32m", "-t", tag+":berth", "."); r.code != 0 {
		t.Fatalf("berth build -m: %s", r)
	}
	if r := legacyBuild(t, dir, "--no-cache", "-m", "48m", "-t", tag+":docker", "."); r.code != 0 {
		t.Fatalf("docker build -m: %s", r)
	}
	for tg, want := range map[string]string{tag + ":berth": "33554432", tag + ":docker": "50331648"} {
		if out := mustDocker(t, "run", "--rm", tg, "cat", "/lim"); out != want {
			t.Errorf("%s: limit in RUN %q, want %s", tg, out, want)
		}
	}
}
