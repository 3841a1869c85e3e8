package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"golang.org/x/crypto/bcrypt"
)

// Pull, push and login against real registries: Debian's docker-registry (distribution 2.8), driven
// through berthd by the stock docker CLI and berth, and checked from the outside with skopeo.

// startDockerRegistry runs docker-registry on a free loopback port; htpasswd ("user:password") turns on
// basic auth. It returns "127.0.0.1:PORT" and stops the registry when the test ends.
func startDockerRegistry(t *testing.T, htpasswd string) string {
	t.Helper()
	return startDockerRegistryOn(t, "127.0.0.1", htpasswd, nil)
}

// startDockerRegistryOn is startRegistry on the address ip, serving TLS with pki's server certificate when
// pki is set.
func startDockerRegistryOn(t *testing.T, ip, htpasswd string, pki *testutil.PKI) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry is not installed (apt install docker-registry)")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/data\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", dir, addr)
	if htpasswd != "" {
		user, pass, _ := strings.Cut(htpasswd, ":")
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(h)+"\n"), 0o600)
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s/htpasswd\n", dir)
	}
	scheme := "http"
	if pki != nil {
		cfg += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", pki.ServerCert, pki.ServerKey)
		scheme = "https"
	}
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600)
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	probe := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for i := 0; i < 200; i++ {
		if resp, err := probe.Get(scheme + "://" + addr + "/v2/"); err == nil {
			resp.Body.Close()
			return addr
		}
		time.Sleep(25 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
	t.Fatalf("docker-registry did not start:\n%s", log)
	return ""
}

// buildAppImage builds a three-layer image (busybox, a random blob of size bytes, a small file) and
// returns the blob's sha256, so a pulled copy can be checked, and the build context.
func buildAppImage(t *testing.T, tag string, size int) (string, string) {
	t.Helper()
	big := make([]byte, size)
	rand.Read(big)
	sum := sha256.Sum256(big)
	dir := buildContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY big /big\nRUN echo small > /small\n",
	})
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := legacyBuild(t, dir, "-q", "-t", tag, "."); r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	t.Cleanup(func() { dockerCmd("rmi", "-f", tag).Run() })
	return hex.EncodeToString(sum[:]), dir
}

// checkApp runs image and checks its content is what buildAppImage put there.
func checkApp(t *testing.T, image, bigSum string) {
	t.Helper()
	out := mustDocker(t, "run", "--rm", "--network", "none", image, "sh", "-c", "cat /small; sha256sum /big")
	if !strings.Contains(out, "small") || !strings.Contains(out, bigSum) {
		t.Fatalf("pulled image content: %q, want small and %s", out, bigSum)
	}
}

func rmiQuiet(refs ...string) {
	dockerCmd(append([]string{"rmi", "-f"}, refs...)...).Run()
}

func TestRegistryPushPull(t *testing.T) {
	reg := startDockerRegistry(t, "")
	app := reg + "/it/app:1"
	sum, appCtx := buildAppImage(t, app, 3<<20)

	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	out := mustDocker(t, "push", app)
	if n := strings.Count(out, ": Pushed"); n != 3 {
		t.Errorf("first push: %d layers pushed, want 3:\n%s", n, out)
	}
	digestLine := regexp.MustCompile(`1: digest: (sha256:[0-9a-f]{64}) size: \d+`).FindStringSubmatch(out)
	if digestLine == nil {
		t.Fatalf("push output has no digest line:\n%s", out)
	}
	manifestDigest := digestLine[1]
	// Again: every blob is already there.
	if out := mustDocker(t, "push", app); strings.Count(out, "Layer already exists") != 3 || !strings.Contains(out, manifestDigest) {
		t.Errorf("second push:\n%s", out)
	}
	// Another repository of the same registry gets the layers by cross-repository mount.
	other := reg + "/it/other:1"
	mustDocker(t, "tag", app, other)
	t.Cleanup(func() { rmiQuiet(other) })
	if out := mustDocker(t, "push", other); strings.Count(out, "Mounted from it/app") != 3 {
		t.Errorf("push to a sibling repository should mount:\n%s", out)
	}
	// skopeo sees the manifest we pushed under the digest we printed.
	if sk, err := exec.LookPath("skopeo"); err == nil {
		out, err := exec.Command(sk, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+app).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != manifestDigest {
			t.Errorf("skopeo inspect: %v %s, want %s", err, out, manifestDigest)
		}
	}

	// Pull it back into an empty store and run it.
	rmiQuiet(app, other)
	if r := docker(t, "image", "inspect", app); r.code == 0 {
		t.Fatal("image still there after rmi")
	}
	out = mustDocker(t, "pull", app)
	if !strings.Contains(out, "Digest: "+manifestDigest) || !strings.Contains(out, "Status: Downloaded newer image for "+app) {
		t.Errorf("pull output:\n%s", out)
	}
	checkApp(t, app, sum)
	if out := mustDocker(t, "pull", app); !strings.Contains(out, "Status: Image is up to date for "+app) {
		t.Errorf("second pull:\n%s", out)
	}
	events := mustDocker(t, "events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10),
		"--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	if !strings.Contains(events, "push "+app) || !strings.Contains(events, "pull "+app) {
		t.Errorf("image events:\n%s", events)
	}
	repoDigests := mustDocker(t, "image", "inspect", "-f", "{{json .RepoDigests}}", app)
	if !strings.Contains(repoDigests, reg+"/it/app@"+manifestDigest) {
		t.Errorf("RepoDigests = %s", repoDigests)
	}
	// By digest, and with run's implicit pull through the berth CLI.
	byDigest := reg + "/it/app@" + manifestDigest
	rmiQuiet(app)
	mustDocker(t, "pull", byDigest)
	checkApp(t, byDigest, sum)
	rmiQuiet(byDigest)
	r := berth(t, "run", "--rm", "--network", "none", app, "cat", "/small")
	if r.code != 0 || !strings.Contains(r.stdout, "small") || !strings.Contains(r.stderr, "Unable to find image '"+app+"' locally") {
		t.Errorf("berth run with implicit pull: %s", r)
	}
	if r := berth(t, "run", "--rm", "--pull", "never", reg+"/it/absent:1", "true"); r.code != 125 || !strings.Contains(r.stderr, "No such image") {
		t.Errorf("--pull never: %s", r)
	}

	// A build whose base is not stored pulls it, as Docker's legacy builder does.
	rmiQuiet(app)
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM " + app + "\nRUN cat /small\n"})
	t.Cleanup(func() { rmiQuiet("it-from-registry:1") })
	if r := legacyBuild(t, dir, "-t", "it-from-registry:1", "."); r.code != 0 || !strings.Contains(r.stdout, "Pulling from it/app") || !strings.Contains(r.stdout, "small") {
		t.Errorf("build FROM an image only the registry has: %s", r)
	}

	// --cache-from an image only the registry has: pulled, and its steps reused.
	rmiQuiet(app, "it-from-registry:1")
	t.Cleanup(func() { rmiQuiet("it-cachefrom:1") })
	if r := legacyBuild(t, appCtx, "--cache-from", app, "-t", "it-cachefrom:1", "."); r.code != 0 ||
		!strings.Contains(r.stdout, "Pulling from it/app") || strings.Count(r.stdout, "Using cache") != 2 {
		t.Errorf("build --cache-from a registry image: %s", r)
	}

	// What skopeo pushes (an OCI manifest, its own compression), berthd pulls and runs.
	if sk, err := exec.LookPath("skopeo"); err == nil {
		oci := filepath.Join(t.TempDir(), "oci")
		if out, err := exec.Command(sk, "copy", "--src-tls-verify=false", "--format", "oci", "docker://"+app, "oci:"+oci+":x").CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy from registry: %v\n%s", err, out)
		}
		sko := reg + "/it/skopeo:1"
		if out, err := exec.Command(sk, "copy", "--dest-tls-verify=false", "oci:"+oci+":x", "docker://"+sko).CombinedOutput(); err != nil {
			t.Fatalf("skopeo copy to registry: %v\n%s", err, out)
		}
		t.Cleanup(func() { rmiQuiet(sko) })
		mustDocker(t, "pull", sko)
		checkApp(t, sko, sum)
	}

	// On a terminal berth keeps one live line per layer (cursor moves redraw it in place).
	if scriptBin, err := exec.LookPath("script"); err == nil {
		// An image of its own, whose layers no container holds on to.
		term := reg + "/it/term:1"
		buildAppImage(t, term, 2<<20)
		mustDocker(t, "push", term)
		rmiQuiet(term)
		cmd := exec.Command(scriptBin, "-qfc", env.berth+" pull "+term, "/dev/null")
		cmd.Env = berthCmd().Env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Downloading") || !strings.Contains(string(out), "Extracting") ||
			!strings.Contains(string(out), "\x1b[1A") || !strings.Contains(string(out), "Pull complete") {
			t.Errorf("berth pull on a terminal: %v\n%s", err, out)
		}
	}

	// A multi-platform index: berthd picks linux/amd64 and records the index's digest.
	decoy := reg + "/it/app:decoy"
	mustDocker(t, "tag", busybox, decoy)
	t.Cleanup(func() { rmiQuiet(decoy) })
	decoyOut := mustDocker(t, "push", decoy)
	decoyDigest := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(decoyOut[strings.LastIndex(decoyOut, "digest:"):])
	idxDigest := putIndex(t, reg, "it/app", "multi", manifestDigest, decoyDigest)
	multi := reg + "/it/app:multi"
	t.Cleanup(func() { rmiQuiet(multi) })
	if out := mustDocker(t, "pull", multi); !strings.Contains(out, "Digest: "+idxDigest) {
		t.Errorf("pull of an index: %s", out)
	}
	checkApp(t, multi, sum)
	// -a: every tag the registry lists for the repository.
	if out := mustDocker(t, "pull", "-a", reg+"/it/app"); !strings.Contains(out, "it/app:1") ||
		!strings.Contains(out, "it/app:decoy") || !strings.Contains(out, "it/app:multi") {
		t.Errorf("pull -a:\n%s", out)
	}

	// Bad input: clear errors, exit 1, nothing tagged.
	for _, c := range []struct{ ref, want string }{
		{reg + "/it/app:nope", "manifest for " + reg + "/it/app:nope not found: manifest unknown"},
		{reg + "/it/nothing:1", "not found"},
		{"127.0.0.1:1/x:1", "connection refused"},
		{reg + "/it/app@sha256:" + strings.Repeat("0", 64), "not found"},
	} {
		r := docker(t, "pull", c.ref)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("pull %s: %s, want %q", c.ref, r, c.want)
		}
	}
	if r := docker(t, "push", reg+"/it/never-built:1"); r.code == 0 || !strings.Contains(r.stderr, "An image does not exist locally with the tag") {
		t.Errorf("push of a missing image: %s", r)
	}
}

func TestRegistryLogin(t *testing.T) {
	reg := startDockerRegistry(t, "alice:s3cret-pw")
	app := reg + "/private/app:1"
	mustDocker(t, "tag", busybox, app)
	t.Cleanup(func() { rmiQuiet(app) })
	t.Cleanup(func() { dockerCmd("logout", reg).Run() })

	if r := docker(t, "push", app); r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
		t.Errorf("push without login: %s", r)
	}
	if r := docker(t, "login", "-u", "alice", "-p", "wrong", reg); r.code == 0 || !strings.Contains(r.stderr, "401 Unauthorized") {
		t.Errorf("login with a wrong password: %s", r)
	}
	if r := runCmd(t, dockerCmd("login", "-u", "alice", "--password-stdin", reg), "s3cret-pw\n"); r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Fatalf("docker login: %s", r)
	}
	mustDocker(t, "push", app)
	rmiQuiet(app)
	mustDocker(t, "pull", app)
	// berth reads the same credentials file, and has its own login and logout.
	if r := berth(t, "logout", reg); r.code != 0 || !strings.Contains(r.stdout, "Removing login credentials for "+reg) {
		t.Errorf("berth logout: %s", r)
	}
	rmiQuiet(app)
	if r := berth(t, "pull", app); r.code == 0 || !strings.Contains(r.stderr, "pull access denied") {
		t.Errorf("pull after logout: %s", r)
	}
	if r := runCmd(t, berthCmd("login", "-u", "alice", "--password-stdin", reg), "s3cret-pw\n"); r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Fatalf("berth login: %s", r)
	}
	if r := berth(t, "pull", app); r.code != 0 {
		t.Errorf("berth pull after login: %s", r)
	}
	cfg, _ := os.ReadFile(filepath.Join(env.tmp, "docker-config", "config.json"))
	if !strings.Contains(string(cfg), reg) {
		t.Errorf("credentials file lacks %s: %s", reg, cfg)
	}
	// The password never reaches berthd's log.
	if log, _ := os.ReadFile(filepath.Join(env.tmp, "berthd.log")); bytes.Contains(log, []byte("s3cret-pw")) {
		t.Error("berthd logged the registry password")
	}
}

// faultProxy stands between berthd and a registry and breaks blob downloads on request.
type faultProxy struct {
	target string
	mu     sync.Mutex
	// cut: after this many bytes of the blob named by blob, the connection is dropped; cutEvery makes
	// every attempt fail (a registry gone), not just the first.
	blob     string
	cut      int64
	cutEvery bool
	corrupt  bool
	hold     chan struct{} // when set, a cut blob transfer waits here instead of dropping
	sent     chan struct{} // closed once the cut point was reached
	gets     map[string][]string
	hits     int // transfers of blob since it was set
	// tamper appends a space to every manifest; truncate serves blob a byte short.
	tamper, truncate bool
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequest(r.Method, "http://"+p.target+r.URL.RequestURI(), r.Body)
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	p.mu.Lock()
	isBlob := r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
	target := isBlob && p.blob != "" && strings.HasSuffix(r.URL.Path, p.blob)
	if isBlob {
		if p.gets == nil {
			p.gets = map[string][]string{}
		}
		d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		p.gets[d] = append(p.gets[d], r.Header.Get("Range"))
	}
	cut, corrupt, hold, sent, tamper, truncate := p.cut, p.corrupt, p.hold, p.sent, p.tamper, p.truncate
	if target && !p.cutEvery {
		p.blob = "" // only the first transfer is broken
	}
	if target {
		p.hits++
	}
	gone := target && p.cutEvery && p.hits > 1
	p.mu.Unlock()
	if gone {
		// After the first break the registry is gone: every retry dies before a byte.
		panic(http.ErrAbortHandler)
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	if (tamper && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/")) || (truncate && target) {
		b, _ := io.ReadAll(resp.Body)
		if tamper {
			b = append(b, ' ')
		} else {
			b = b[:len(b)-1]
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
		return
	}
	w.WriteHeader(resp.StatusCode)
	if !target {
		io.Copy(w, resp.Body)
		return
	}
	if corrupt {
		b, _ := io.ReadAll(resp.Body)
		if len(b) > 0 {
			b[len(b)/2] ^= 0xff
		}
		w.Write(b)
		return
	}
	io.CopyN(w, resp.Body, cut)
	w.(http.Flusher).Flush()
	if sent != nil {
		close(sent)
	}
	if hold != nil {
		<-hold
	}
	panic(http.ErrAbortHandler)
}

func (p *faultProxy) requests(blob string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.gets[blob]...)
}

// layerDigests returns the blob digests of a pushed image's layers, bottom first, by asking the
// registry for its manifest.
func layerDigests(t *testing.T, reg, repo, tag string) []string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+reg+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, m := range regexp.MustCompile(`"digest":\s*"(sha256:[0-9a-f]{64})"`).FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	if len(out) < 2 {
		t.Fatalf("manifest: %s", b)
	}
	return out[1:] // the first is the config
}

func TestPullFaultsAndResume(t *testing.T) {
	reg := startDockerRegistry(t, "")
	sum, _ := buildAppImage(t, reg+"/it/faults:1", 4<<20)
	pushOut := mustDocker(t, "push", reg+"/it/faults:1")
	pushedDigest := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(pushOut[strings.LastIndex(pushOut, "digest:"):])
	layers := layerDigests(t, reg, "it/faults", "1")
	big := layers[1]

	proxy := &faultProxy{target: reg}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	via := strings.TrimPrefix(srv.URL, "http://") + "/it/faults:1"
	t.Cleanup(func() { rmiQuiet(via) })
	// busybox's own layer is in the store already; the other two must come over the proxy.
	rmiQuiet(reg + "/it/faults:1")
	pulls := filepath.Join(env.dataRoot, "pulls")

	// A corrupt blob: the pull fails, nothing is tagged, and the bad bytes are not kept.
	proxy.mu.Lock()
	proxy.blob, proxy.corrupt = big, true
	proxy.mu.Unlock()
	if r := docker(t, "pull", via); r.code == 0 || !strings.Contains(r.stderr, "verification failed") {
		t.Fatalf("pull of a corrupt blob: %s", r)
	}
	if r := docker(t, "image", "inspect", via); r.code == 0 {
		t.Error("a failed pull left a tagged image")
	}
	if _, err := os.Stat(filepath.Join(pulls, strings.Replace(big, ":", "-", 1))); err == nil {
		t.Error("the corrupt blob was kept for resuming")
	}

	// A manifest that does not match the digest asked for, and a blob a byte short: refused, untagged.
	proxy.mu.Lock()
	proxy.blob, proxy.corrupt, proxy.tamper = "", false, true
	proxy.mu.Unlock()
	viaDigest := strings.TrimPrefix(srv.URL, "http://") + "/it/faults@" + pushedDigest
	if r := docker(t, "pull", viaDigest); r.code == 0 || !strings.Contains(r.stderr, "manifest verification failed for digest "+pushedDigest) {
		t.Errorf("pull of a tampered manifest by digest: %s", r)
	}
	proxy.mu.Lock()
	proxy.tamper, proxy.truncate, proxy.blob = false, true, big
	proxy.mu.Unlock()
	if r := docker(t, "pull", via); r.code == 0 || !strings.Contains(r.stderr, "the manifest says") {
		t.Errorf("pull of a truncated blob: %s", r)
	}
	if r := docker(t, "image", "inspect", via); r.code == 0 {
		t.Error("a failed pull left a tagged image")
	}
	proxy.mu.Lock()
	proxy.truncate = false
	proxy.mu.Unlock()

	// A registry that goes away in the middle of a blob: the pull fails; the next one resumes the
	// blob where it broke and does not fetch the complete small layer again.
	proxy.mu.Lock()
	proxy.blob, proxy.corrupt, proxy.cut, proxy.cutEvery, proxy.hits = big, false, 1<<20, true, 0
	proxy.mu.Unlock()
	if r := docker(t, "pull", via); r.code == 0 || !strings.Contains(r.stderr, "interrupted") {
		t.Fatalf("pull from a registry gone mid-blob: %s", r)
	}
	proxy.mu.Lock()
	proxy.blob, proxy.cutEvery = "", false
	proxy.mu.Unlock()
	mustDocker(t, "pull", via)
	checkApp(t, via, sum)
	got := proxy.requests(big)
	if last := got[len(got)-1]; !strings.HasPrefix(last, "bytes=") || last == "bytes=0-" {
		t.Errorf("the resumed pull fetched %s with Range %q, want a resume from the break (all: %q)", big, last, got)
	}
	// Over the three pulls, the small layer (complete in the first) came over the wire once.
	if small := proxy.requests(layers[2]); len(small) != 1 {
		t.Errorf("the complete small layer was fetched %d times (%q), want once", len(small), small)
	}

	// kill -9 of berthd in the middle of a blob: after restart the pull resumes from the file it left.
	rmiQuiet(via)
	hold := make(chan struct{})
	sent := make(chan struct{})
	proxy.mu.Lock()
	proxy.blob, proxy.cut, proxy.hold, proxy.sent, proxy.gets = big, 2<<20, hold, sent, nil
	proxy.mu.Unlock()
	bg := dockerCmd("pull", via)
	if err := bg.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sent:
	case <-time.After(60 * time.Second):
		bg.Process.Kill()
		t.Fatal("the pull never reached the blob")
	}
	time.Sleep(200 * time.Millisecond) // let berthd write what it received
	stopDaemon(syscall.SIGKILL)
	close(hold)
	bg.Wait()
	if err := startDaemon(); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, "pull", via)
	checkApp(t, via, sum)
	got = proxy.requests(big)
	if last := got[len(got)-1]; !strings.HasPrefix(last, "bytes=") || last == "bytes=0-" {
		t.Errorf("after kill -9 the pull fetched %s with Range %q, want a resume (all: %q)", big, last, got)
	}
	if entries, _ := os.ReadDir(pulls); len(entries) != 0 {
		t.Errorf("download files left after a successful pull: %d", len(entries))
	}
}

// A registry off loopback is a secure one: TLS, verified against the system roots plus the CA in
// certs.d/<host:port>/ca.crt. (It listens on the test bridge's address, which is this host's own.)
func TestRegistryTLS(t *testing.T) {
	ifc, err := net.InterfaceByName(testBridge)
	if err != nil {
		t.Skipf("no %s: %v", testBridge, err)
	}
	addrs, _ := ifc.Addrs()
	ip := ""
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			ip = n.IP.String()
		}
	}
	if ip == "" {
		t.Skip("the test bridge has no IPv4 address")
	}
	pki, err := testutil.WritePKI(t.TempDir(), net.ParseIP(ip))
	if err != nil {
		t.Fatal(err)
	}
	reg := startDockerRegistryOn(t, ip, "", &pki)
	ref := reg + "/secure/app:1"
	mustDocker(t, "tag", busybox, ref)
	t.Cleanup(func() { rmiQuiet(ref) })
	certs := filepath.Join(env.tmp, "certs.d", reg)
	t.Cleanup(func() { os.RemoveAll(certs) })

	if r := docker(t, "push", ref); r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("push to a TLS registry whose CA is unknown: %s", r)
	}
	if err := os.MkdirAll(certs, 0o755); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(pki.CA)
	os.WriteFile(filepath.Join(certs, "ca.crt"), caPEM, 0o644)
	mustDocker(t, "push", ref)
	rmiQuiet(ref)
	mustDocker(t, "pull", ref)
	if out := mustDocker(t, "run", "--rm", "--network", "none", ref, "echo", "over tls"); out != "over tls" {
		t.Errorf("run: %q", out)
	}
}

// putIndex stores an OCI image index under repo:tag whose linux/amd64 entry is manifest and whose
// linux/arm64 entry is decoy, and returns the index's digest.
func putIndex(t *testing.T, reg, repo, tag, manifest, decoy string) string {
	t.Helper()
	idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`+
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"%s","size":%d,"platform":{"architecture":"arm64","os":"linux"}},`+
		`{"mediaType":"%s","digest":"%s","size":%d,"platform":{"architecture":"amd64","os":"linux"}}]}`,
		decoy, manifestSize(t, reg, repo, decoy), "application/vnd.docker.distribution.manifest.v2+json", manifest, manifestSize(t, reg, repo, manifest))
	req, _ := http.NewRequest(http.MethodPut, "http://"+reg+"/v2/"+repo+"/manifests/"+tag, strings.NewReader(idx))
	req.Header.Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT index: %s %s", resp.Status, body)
	}
	sum := sha256.Sum256([]byte(idx))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func manifestSize(t *testing.T, reg, repo, digest string) int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+reg+"/v2/"+repo+"/manifests/"+digest, nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.ContentLength
}

// The whole loop on Berth alone: the stock docker CLI, through berthd, pushes to and pulls from
// `berth registry serve`, anonymously and with docker's token login.
func TestDockerCLIWithBerthRegistry(t *testing.T) {
	for _, auth := range []string{"none", "token"} {
		t.Run(auth, func(t *testing.T) {
			dir := t.TempDir()
			var args []string
			if auth == "token" {
				args = []string{"--htpasswd", writeHtpasswd(t, dir, "carol", "c4rol-pw")}
			}
			reg := startRegistry(t, filepath.Join(dir, "root"), args...).addr
			app := reg + "/berth/app:1"
			sum, _ := buildAppImage(t, app, 2<<20)
			if auth == "token" {
				if r := docker(t, "push", app); r.code == 0 {
					t.Fatalf("push without login: %s", r)
				}
				if r := runCmd(t, dockerCmd("login", "-u", "carol", "--password-stdin", reg), "c4rol-pw\n"); r.code != 0 {
					t.Fatalf("login: %s", r)
				}
				t.Cleanup(func() { dockerCmd("logout", reg).Run() })
			}
			out := mustDocker(t, "push", app)
			if strings.Count(out, ": Pushed") != 3 {
				t.Errorf("push:\n%s", out)
			}
			if out := mustDocker(t, "push", app); strings.Count(out, "Layer already exists") != 3 {
				t.Errorf("second push:\n%s", out)
			}
			other := reg + "/berth/other:1"
			mustDocker(t, "tag", app, other)
			t.Cleanup(func() { rmiQuiet(other) })
			if out := mustDocker(t, "push", other); strings.Count(out, "Mounted from berth/app") != 3 {
				t.Errorf("push to a sibling repository:\n%s", out)
			}
			rmiQuiet(app, other)
			mustDocker(t, "pull", app)
			checkApp(t, app, sum)
		})
	}
}
