package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncedBuild runs `berth build` in dir (extra environment in envs) and returns its output and the
// image ID it printed.
func syncedBuild(t *testing.T, dir string, envs []string, args ...string) (string, string) {
	t.Helper()
	cmd := berthCmd(append([]string{"build"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, envs...)
	r := runCmd(t, cmd, "")
	if r.code != 0 {
		t.Fatalf("berth build %v: %s", args, r)
	}
	m := regexp.MustCompile(`Image ID: (sha256:[0-9a-f]{64})`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no image ID in:\n%s", r.stdout)
	}
	rmiOnCleanup(t, m[1])
	return r.stdout, m[1]
}

var sentRE = regexp.MustCompile(`Build context synced: sending (\d+) of (\d+) paths`)

// sent is what the sync line of a build's output says: "N of M", or "" when the build uploaded a tar.
func sent(out string) string {
	m := sentRE.FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1] + " of " + m[2]
}

// syncedDir is where berthd keeps the synced tree of the context directory dir (as berth names it).
func syncedDir(t *testing.T, dir string) string {
	host, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		h, _ := os.Hostname()
		host = []byte(h)
	}
	abs, _ := filepath.Abs(dir)
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(host)) + "\x00" + abs))
	return filepath.Join(env.dataRoot, "builder", "synced", hex.EncodeToString(sum[:16]))
}

// pastRacyWindow waits until files just written are trusted by their stat data (ctxsync.RacyWindow).
func pastRacyWindow() { time.Sleep(2100 * time.Millisecond) }

func runOut(t *testing.T, id string, cmd ...string) string {
	t.Helper()
	return mustDocker(t, append([]string{"run", "--rm", id}, cmd...)...)
}

// Rebuilds through context sync: a fully cached one sends nothing and gives the tar upload's image
// ID; a changed file (same size) is sent alone and rebuilds from the step that reads it; deletions
// and .dockerignore changes reach COPY; builder prune forgets the tree.
func TestBuildContextSync(t *testing.T) {
	dir := buildContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /seen-a\nCOPY . /all\nRUN cd /all && find . | sort > /listing\n",
		"a.txt":      "one\n",
		"src/b.txt":  "bee\n",
		"src/c.txt":  "sea\n",
		"notes.md":   "notes\n",
	})
	tarID := func() string {
		t.Helper()
		out, id := syncedBuild(t, dir, []string{"BERTH_BUILD_SYNC=0"}, ".")
		if s := sent(out); s != "" {
			t.Fatalf("BERTH_BUILD_SYNC=0 still synced (%s)", s)
		}
		return id
	}
	pastRacyWindow()
	out, id1 := syncedBuild(t, dir, nil, ".")
	if s := sent(out); s != "6 of 6" {
		t.Fatalf("first sync sent %q, want 6 of 6:\n%s", s, out)
	}
	out, id2 := syncedBuild(t, dir, nil, ".")
	if s := sent(out); s != "0 of 6" || id2 != id1 || strings.Count(out, "=> CACHED") != 4 {
		t.Fatalf("cached rebuild: sent %q, id %s (first %s):\n%s", s, id2, id1, out)
	}
	if tid := tarID(); tid != id1 {
		t.Fatalf("the tar upload built %s, the sync %s", tid, id1)
	}
	if got := runOut(t, id1, "cat", "/listing"); got != ".\n./Dockerfile\n./a.txt\n./notes.md\n./src\n./src/b.txt\n./src/c.txt" {
		t.Fatalf("listing %q", got)
	}

	// Same size, new content: only a.txt goes, and the build redoes everything from its COPY.
	fi, _ := os.Stat(filepath.Join(dir, "a.txt"))
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two\n"), 0o644)
	os.Chtimes(filepath.Join(dir, "a.txt"), fi.ModTime().Add(time.Second), fi.ModTime().Add(time.Second))
	out, id3 := syncedBuild(t, dir, nil, ".")
	if s := sent(out); s != "1 of 6" || strings.Contains(out, "=> CACHED") {
		t.Fatalf("after a change: sent %q:\n%s", s, out)
	}
	if got := runOut(t, id3, "cat", "/seen-a"); got != "two" {
		t.Fatalf("/seen-a %q", got)
	}
	if tid := tarID(); tid != id3 {
		t.Fatalf("after a change the tar upload built %s, the sync %s", tid, id3)
	}

	// A deleted file: its directory changed, so that goes, and a.txt once more (it was sent within the
	// racy window of its change, so its stat data may not have shown a change right after); the first
	// COPY stays cached.
	pastRacyWindow()
	os.Remove(filepath.Join(dir, "src", "c.txt"))
	out, id4 := syncedBuild(t, dir, nil, ".")
	if s := sent(out); s != "2 of 5" || strings.Count(out, "=> CACHED") != 2 {
		t.Fatalf("after a delete: sent %q:\n%s", s, out)
	}
	if got := runOut(t, id4, "cat", "/listing"); strings.Contains(got, "c.txt") || !strings.Contains(got, "b.txt") {
		t.Fatalf("listing after a delete %q", got)
	}
	if tid := tarID(); tid != id4 {
		t.Fatalf("after a delete the tar upload built %s, the sync %s", tid, id4)
	}

	// .dockerignore now leaves out notes.md and itself: nothing to send, and COPY no longer sees them.
	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("notes.md\n.dockerignore\n"), 0o644)
	out, id5 := syncedBuild(t, dir, nil, ".")
	if s := sent(out); s != "0 of 4" {
		t.Fatalf("after .dockerignore: sent %q:\n%s", s, out)
	}
	if got := runOut(t, id5, "cat", "/listing"); got != ".\n./Dockerfile\n./a.txt\n./src\n./src/b.txt" {
		t.Fatalf("listing with .dockerignore %q", got)
	}
	if tid := tarID(); tid != id5 {
		t.Fatalf("with .dockerignore the tar upload built %s, the sync %s", tid, id5)
	}
	// And back: notes.md must be sent again, the daemon dropped it.
	os.Remove(filepath.Join(dir, ".dockerignore"))
	out, id6 := syncedBuild(t, dir, nil, ".")
	if s := sent(out); s != "1 of 5" {
		t.Fatalf("without .dockerignore: sent %q:\n%s", s, out)
	}
	if id6 != id4 {
		t.Fatalf("without .dockerignore again: %s, before it %s", id6, id4)
	}

	// builder prune forgets the synced tree.
	if !fileExists(syncedDir(t, dir)) {
		t.Fatalf("no synced tree at %s", syncedDir(t, dir))
	}
	if r := berth(t, "builder", "prune", "-f"); r.code != 0 {
		t.Fatalf("builder prune: %s", r)
	}
	if fileExists(syncedDir(t, dir)) {
		t.Fatal("builder prune left the synced tree")
	}
	out, id7 := syncedBuild(t, dir, nil, ".")
	if s := sent(out); s != "5 of 5" || id7 != id4 {
		t.Fatalf("after prune: sent %q, id %s (want %s)", s, id7, id4)
	}
}

// Two builds of one context at once: the second changes a file while the first still has to copy
// it, and each build copies the file as it was when that build synced.
func TestBuildContextSyncConcurrent(t *testing.T) {
	dir := buildContext(t, map[string]string{
		"slow.Dockerfile": "FROM busybox\nRUN sleep 3\nCOPY a.txt /a.txt\n",
		"fast.Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\n",
		"a.txt":           "one\n",
	})
	slow := berthCmd("build", "--no-cache", "-f", "slow.Dockerfile", ".")
	slow.Dir = dir
	var slowOut strings.Builder
	slow.Stdout, slow.Stderr = &slowOut, &slowOut
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var slowErr error
	go func() { defer wg.Done(); slowErr = slow.Wait() }()
	t.Cleanup(func() { slow.Process.Kill(); wg.Wait() })
	time.Sleep(time.Second) // the slow build has synced and is in its RUN
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two\n"), 0o644)
	_, fastID := syncedBuild(t, dir, nil, "-f", "fast.Dockerfile", ".")
	fastDone := time.Now()
	wg.Wait()
	if slowErr != nil {
		t.Fatalf("slow build: %v\n%s", slowErr, slowOut.String())
	}
	if time.Since(fastDone) < 500*time.Millisecond {
		t.Fatalf("the builds did not overlap:\n%s", slowOut.String())
	}
	m := regexp.MustCompile(`Image ID: (sha256:[0-9a-f]{64})`).FindStringSubmatch(slowOut.String())
	if m == nil {
		t.Fatalf("slow build output:\n%s", slowOut.String())
	}
	rmiOnCleanup(t, m[1])
	if got := runOut(t, fastID, "cat", "/a.txt"); got != "two" {
		t.Fatalf("fast build copied %q", got)
	}
	if got := runOut(t, m[1], "cat", "/a.txt"); got != "one" {
		t.Fatalf("slow build copied %q, the file as changed after it synced", got)
	}
	// The tree the slow build held goes once it is done; the current one stays.
	deadline := time.Now().Add(5 * time.Second)
	for {
		gens, _ := os.ReadDir(syncedDir(t, dir))
		if len(gens) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d generations of the synced tree left, want 1", len(gens))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Against a daemon without context sync (here berthd behind a proxy that answers 404 there, as
// Docker does), berth build uploads the context tar.
func TestBuildContextSyncFallback(t *testing.T) {
	dir := buildContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\n",
		"a.txt":      "one\n",
	})
	target, _ := url.Parse("http://berthd")
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.FlushInterval = -1
	proxy.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", env.sock)
	}}
	var mu sync.Mutex
	var syncAsked, tarBuilds, headerBuilds int
	sock := filepath.Join(t.TempDir(), "proxy.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		switch {
		case strings.Contains(r.URL.Path, "/berth/"):
			syncAsked++
			mu.Unlock()
			http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
			return
		case strings.HasSuffix(r.URL.Path, "/build") && r.Header.Get("X-Berth-Context") != "":
			headerBuilds++
		case strings.HasSuffix(r.URL.Path, "/build"):
			tarBuilds++
		}
		mu.Unlock()
		proxy.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	cmd := exec.Command(env.berth, "-H", "unix://"+sock, "build", ".")
	cmd.Dir = dir
	r := runCmd(t, cmd, "")
	if r.code != 0 {
		t.Fatalf("build through the proxy: %s", r)
	}
	m := regexp.MustCompile(`Image ID: (sha256:[0-9a-f]{64})`).FindStringSubmatch(r.stdout)
	if m == nil || sent(r.stdout) != "" {
		t.Fatalf("build output:\n%s", r.stdout)
	}
	rmiOnCleanup(t, m[1])
	mu.Lock()
	defer mu.Unlock()
	if syncAsked != 1 || tarBuilds != 1 || headerBuilds != 0 {
		t.Fatalf("sync asked %d times, %d tar builds, %d synced builds; want 1, 1, 0", syncAsked, tarBuilds, headerBuilds)
	}
	if _, id := syncedBuild(t, dir, nil, "."); id != m[1] {
		t.Fatalf("direct (synced) build %s, through the proxy %s", id, m[1])
	}
}
