package integration

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// registryProc is a `berth registry serve` process started by a test.
type registryProc struct {
	cmd  *exec.Cmd
	addr string // host:port it listens on
	root string
	logs *bytes.Buffer
}

// startRegistry runs `berth registry serve` on a free loopback port and waits until it listens. It is
// stopped (SIGKILL is fine: the store is crash-safe) when the test ends.
func startRegistry(t *testing.T, root string, args ...string) *registryProc {
	t.Helper()
	cmd := exec.Command(env.berth, append([]string{"registry", "serve", "--addr", "127.0.0.1:0", "--root", root}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &registryProc{cmd: cmd, root: root, logs: &bytes.Buffer{}}
	t.Cleanup(func() { p.kill() })
	addrc := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening on https?://(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
			p.logs.WriteString(sc.Text() + "\n")
		}
	}()
	select {
	case p.addr = <-addrc:
	case <-time.After(30 * time.Second):
		t.Fatalf("registry did not start: %s", p.logs)
	}
	return p
}

func (p *registryProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// buildTool builds a Go program pinned by one of the small modules under testdata (fetched through the
// Go module proxy like any dependency), once per test run.
func buildTool(t *testing.T, moduleDir, pkg string) string {
	t.Helper()
	bin := filepath.Join(env.tmp, "tool-"+filepath.Base(pkg))
	if fileExists(bin) {
		return bin
	}
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// buildConformance builds the OCI distribution-spec conformance suite.
func buildConformance(t *testing.T) string {
	return buildTool(t, "testdata/ociconformance", "github.com/opencontainers/distribution-spec/conformance")
}

// TestRegistryConformance runs the official OCI distribution-spec conformance suite (spec 1.1, every
// API and data category, sha512 included, plus the optional upload cancel, digest headers and tag
// parameters) against `berth registry serve`, with and without token auth.
func TestRegistryConformance(t *testing.T) {
	bin := buildConformance(t)
	for _, mode := range []string{"open", "token"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			var args, creds []string
			if mode == "token" {
				args = []string{"--htpasswd", writeHtpasswd(t, dir, "conf", "formance")}
				creds = []string{"OCI_USERNAME=conf", "OCI_PASSWORD=formance"}
			}
			reg := startRegistry(t, filepath.Join(dir, "root"), args...)
			cmd := exec.Command(bin)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(),
				"OCI_REGISTRY="+reg.addr, "OCI_TLS=disabled", "OCI_VERSION=1.1",
				"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
				"OCI_API_BLOBS_UPLOAD_CANCEL=true", "OCI_API_BLOBS_DIGEST_HEADER=true",
				"OCI_API_MANIFESTS_DIGEST_HEADER=true", "OCI_API_MANIFESTS_TAG_PARAM=true",
				"OCI_DATA_SHA512=true", "OCI_RESULTS_DIR="+filepath.Join(dir, "results"),
			)
			cmd.Env = append(cmd.Env, creds...)
			out, err := cmd.CombinedOutput()
			summary := string(out)
			if i := strings.Index(summary, "OCI Conformance Result"); i >= 0 {
				summary = summary[i:]
			}
			if err != nil || !strings.Contains(summary, "OCI Conformance Result: Pass") {
				t.Fatalf("conformance failed (%v):\n%s\nregistry log:\n%s", err, tail(string(out), 20000), reg.logs)
			}
			// Nothing skipped or disabled: every category really ran.
			for _, line := range strings.Split(summary, "\n") {
				if f := strings.Fields(line); len(f) >= 2 && strings.HasSuffix(f[len(f)-1], "Skip") ||
					regexp.MustCompile(`^\s*(Skip|Disabled)\.*:\s*[1-9]`).MatchString(line) {
					t.Fatalf("conformance skipped something: %q\n%s", line, summary)
				}
			}
			t.Logf("%s", strings.SplitN(summary, "\n\n", 2)[0])
		})
	}
}

func writeHtpasswd(t *testing.T, dir, user, pass string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(p, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeSelfSigned makes a self-signed certificate for 127.0.0.1 and writes cert, key and, for skopeo's
// --cert-dir, the certificate again as certDir/ca.crt.
func writeSelfSigned(t *testing.T, dir string) (cert, key, certDir string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "berth-registry-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	cert, key, certDir = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"), filepath.Join(dir, "certs.d")
	if err := os.MkdirAll(certDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, b := range map[string][]byte{cert: certPEM, key: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), filepath.Join(certDir, "ca.crt"): certPEM} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, key, certDir
}

func skopeo(t *testing.T, args ...string) result {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Fatal("skopeo is not installed (apt-get install skopeo; .ci/run installs it)")
	}
	cmd := exec.Command("skopeo", append([]string{"--insecure-policy"}, args...)...)
	// No auth file or registries.conf of the machine's user leaks in, and none is written.
	cmd.Env = append(os.Environ(), "REGISTRY_AUTH_FILE="+filepath.Join(env.tmp, "skopeo-auth.json"))
	return runCmd(t, cmd, "")
}

// TestRegistrySkopeo pushes the busybox test image to `berth registry serve` with skopeo (the
// containers/image client) and pulls it back: plain HTTP, basic auth, token auth and TLS with a
// self-signed certificate, in the Docker schema2 and OCI formats; the manifest and every blob must
// come back byte for byte.
func TestRegistrySkopeo(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if r := runCmd(t, berthCmd("save", "-o", archive, busybox), ""); r.code != 0 {
		t.Fatalf("berth save: %s", r)
	}
	cases := []struct {
		name   string
		format string // skopeo --format
		auth   string // "", "basic", "token"
		tls    bool
	}{
		{name: "plain-schema2", format: "v2s2"},
		{name: "plain-oci", format: "oci"},
		{name: "basic-auth", format: "v2s2", auth: "basic"},
		{name: "token-auth", format: "oci", auth: "token"},
		{name: "tls-token-auth", format: "v2s2", auth: "token", tls: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var args []string
			dst, src := []string{"--dest-tls-verify=false"}, []string{"--src-tls-verify=false"}
			insp := []string{"--tls-verify=false"}
			if tc.auth != "" {
				args = append(args, "--htpasswd", writeHtpasswd(t, dir, "alice", "pa55word"), "--auth", tc.auth)
				dst = append(dst, "--dest-creds", "alice:pa55word")
				src = append(src, "--src-creds", "alice:pa55word")
				insp = append(insp, "--creds", "alice:pa55word")
			}
			if tc.tls {
				cert, key, certDir := writeSelfSigned(t, dir)
				args = append(args, "--tls-cert", cert, "--tls-key", key)
				// Verified against our CA, not skipped.
				dst = []string{"--dest-cert-dir", certDir, "--dest-creds", "alice:pa55word"}
				src = []string{"--src-cert-dir", certDir, "--src-creds", "alice:pa55word"}
				insp = []string{"--cert-dir", certDir, "--creds", "alice:pa55word"}
			}
			reg := startRegistry(t, filepath.Join(dir, "root"), args...)
			ref := "docker://" + reg.addr + "/it/busybox:v1"

			if tc.auth != "" {
				bad := []string{"copy", "--dest-tls-verify=false", "--dest-creds", "alice:wrong", "docker-archive:" + archive, ref}
				if tc.tls {
					bad[1] = "--dest-tls-verify=false"
				}
				if r := skopeo(t, bad...); r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") {
					t.Fatalf("push with a wrong password: %s", r)
				}
			}
			digestFile := filepath.Join(dir, "digest")
			push := append([]string{"copy", "--format", tc.format, "--digestfile", digestFile}, dst...)
			if r := skopeo(t, append(push, "docker-archive:"+archive, ref)...); r.code != 0 {
				t.Fatalf("push: %s\nregistry log:\n%s", r, reg.logs)
			}
			pushed, err := os.ReadFile(digestFile)
			if err != nil {
				t.Fatal(err)
			}
			r := skopeo(t, append(append([]string{"inspect", "--raw"}, insp...), ref)...)
			if r.code != 0 {
				t.Fatalf("inspect: %s", r)
			}
			if got := sha256.Sum256([]byte(r.stdout)); "sha256:"+hex.EncodeToString(got[:]) != strings.TrimSpace(string(pushed)) {
				t.Fatalf("manifest digest %x, pushed %s", got, pushed)
			}
			// Pull into a dir: layout, which keeps the manifest as served and names blobs by digest.
			out := filepath.Join(dir, "pulled")
			if r := skopeo(t, append(append([]string{"copy"}, src...), ref, "dir:"+out)...); r.code != 0 {
				t.Fatalf("pull: %s\nregistry log:\n%s", r, reg.logs)
			}
			if got := "sha256:" + sha256File(t, filepath.Join(out, "manifest.json")); got != strings.TrimSpace(string(pushed)) {
				t.Fatalf("pulled manifest %s, pushed %s", got, pushed)
			}
			var m struct {
				MediaType string
				Config    struct{ Digest string }
				Layers    []struct{ Digest string }
			}
			if err := json.Unmarshal([]byte(r.stdout), &m); err != nil {
				t.Fatal(err)
			}
			wantMT := map[string]string{"v2s2": "application/vnd.docker.distribution.manifest.v2+json", "oci": "application/vnd.oci.image.manifest.v1+json"}[tc.format]
			if m.MediaType != wantMT || len(m.Layers) == 0 {
				t.Fatalf("manifest %s", r.stdout)
			}
			for _, d := range append([]string{m.Config.Digest}, func() (l []string) {
				for _, x := range m.Layers {
					l = append(l, x.Digest)
				}
				return
			}()...) {
				hexd := strings.TrimPrefix(d, "sha256:")
				if got := sha256File(t, filepath.Join(out, hexd)); got != hexd {
					t.Fatalf("blob %s came back as %s", d, got)
				}
			}
		})
	}
}

// TestRegistryReadOnly serves a populated root read-only: pulls work, pushes and deletes get 405
// UNSUPPORTED.
func TestRegistryReadOnly(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	if r := runCmd(t, berthCmd("save", "-o", archive, busybox), ""); r.code != 0 {
		t.Fatalf("berth save: %s", r)
	}
	root := filepath.Join(t.TempDir(), "root")
	reg := startRegistry(t, root)
	if r := skopeo(t, "copy", "--dest-tls-verify=false", "docker-archive:"+archive, "docker://"+reg.addr+"/ro/busybox:v1"); r.code != 0 {
		t.Fatalf("push: %s", r)
	}
	reg.kill()
	ro := startRegistry(t, root, "--read-only")
	ref := "docker://" + ro.addr + "/ro/busybox"
	if r := skopeo(t, "copy", "--dest-tls-verify=false", "docker-archive:"+archive, ref+":v2"); r.code == 0 {
		t.Fatalf("push to a read-only registry succeeded: %s", r)
	}
	if r := skopeo(t, "inspect", "--tls-verify=false", ref+":v1"); r.code != 0 {
		t.Fatalf("inspect on a read-only registry: %s", r)
	}
	for _, req := range []struct{ method, path string }{{"POST", "/v2/ro/busybox/blobs/uploads/"}, {"DELETE", "/v2/ro/busybox/manifests/v1"}} {
		hr, _ := http.NewRequest(req.method, "http://"+ro.addr+req.path, nil)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), `"code":"UNSUPPORTED"`) {
			t.Fatalf("%s %s: %d %s", req.method, req.path, resp.StatusCode, body)
		}
	}
}

// TestRegistryKill9MidUpload kills the registry (SIGKILL) while a monolithic upload and a chunked one
// are streaming. After a restart neither blob is visible, the chunked upload resumes from the offset
// the server reports, and gc clears the debris.
func TestRegistryKill9MidUpload(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	reg := startRegistry(t, root)
	base := "http://" + reg.addr + "/v2/crash/blob"
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	dg := "sha256:" + hex.EncodeToString(sum[:])

	// A body that sends data[from:len/2] and then stalls until stopped.
	stalled := func(from int) (io.Reader, func()) {
		pr, pw := io.Pipe()
		go func() { _, _ = pw.Write(data[from : len(data)/2]) }()
		return pr, func() { pw.CloseWithError(io.ErrUnexpectedEOF) }
	}
	send := func(method, url string, body io.Reader, length int64, hdr map[string]string) chan error {
		done := make(chan error, 1)
		go func() {
			req, _ := http.NewRequest(method, url, body)
			req.ContentLength = length
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		return done
	}
	do := func(method, url string, body []byte, hdr map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	// Monolithic POST ?digest=.
	body1, stop1 := stalled(0)
	defer stop1()
	done1 := send("POST", base+"s/uploads/?digest="+dg, body1, int64(len(data)), nil)
	// Chunked: a first chunk completes, the second stalls halfway.
	resp := do("POST", base+"s/uploads/", nil, nil)
	locPath := resp.Header.Get("Location")
	loc := "http://" + reg.addr + locPath
	first := 1 << 20
	if resp := do("PATCH", loc, data[:first], map[string]string{"Content-Range": fmt.Sprintf("0-%d", first-1)}); resp.StatusCode != 202 {
		t.Fatalf("first chunk: %d", resp.StatusCode)
	}
	body2, stop2 := stalled(first)
	defer stop2()
	done2 := send("PATCH", loc, body2, -1, nil)

	// Wait until both stalled uploads have reached the disk, then SIGKILL.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var inTmp, inUpload int64
		ents, _ := os.ReadDir(filepath.Join(root, "tmp"))
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				inTmp += fi.Size()
			}
		}
		ups, _ := os.ReadDir(filepath.Join(root, "repos", "crash", "_uploads"))
		for _, e := range ups {
			if fi, err := e.Info(); err == nil {
				inUpload += fi.Size()
			}
		}
		if inTmp > 0 && inUpload > int64(first) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uploads did not reach the disk (tmp %d, upload %d)", inTmp, inUpload)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := reg.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = reg.cmd.Wait()
	// The clients notice the dead server only once their request bodies end.
	stop1()
	stop2()
	for _, done := range []chan error{done1, done2} {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("a client did not notice the registry died")
		}
	}

	reg = startRegistry(t, root)
	base = "http://" + reg.addr + "/v2/crash/blob"
	if resp := do("HEAD", base+"s/"+dg, nil, nil); resp.StatusCode != 404 {
		t.Fatalf("partial blob visible after kill -9: %d", resp.StatusCode)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "blobs", "sha256")); len(ents) != 0 {
		t.Fatalf("partial blob in the store: %v", ents)
	}
	// Resume the chunked upload where the server says it stands.
	loc = "http://" + reg.addr + locPath
	resp = do("GET", loc, nil, nil)
	var end int
	if _, err := fmt.Sscanf(resp.Header.Get("Range"), "0-%d", &end); resp.StatusCode != 204 || err != nil || end+1 < first {
		t.Fatalf("upload status after restart: %d Range=%q", resp.StatusCode, resp.Header.Get("Range"))
	}
	if resp := do("PUT", loc+"?digest="+dg, data[end+1:], map[string]string{"Content-Range": fmt.Sprintf("%d-%d", end+1, len(data)-1)}); resp.StatusCode != 201 {
		t.Fatalf("completing the resumed upload: %d", resp.StatusCode)
	}
	if resp := do("HEAD", base+"s/"+dg, nil, nil); resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("resumed blob: %d, %d bytes", resp.StatusCode, resp.ContentLength)
	}
	reg.kill()
	// gc removes the temp file of the killed monolithic upload, and the blob nothing references.
	r := runCmd(t, berthCmd("registry", "gc", "--root", root), "")
	if r.code != 0 || !strings.Contains(r.stdout, "blob "+dg) {
		t.Fatalf("gc: %s", r)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
		t.Fatalf("tmp not cleared by gc: %v", ents)
	}
}

// TestRegistryCrane drives the registry with go-containerregistry's crane: login through the token
// flow, push a docker-save archive, list, tag, copy to another repository (a cross-repository mount),
// pull, delete, catalog.
func TestRegistryCrane(t *testing.T) {
	crane := buildTool(t, "testdata/crane", "github.com/google/go-containerregistry/cmd/crane")
	dir := t.TempDir()
	archive := filepath.Join(dir, "busybox.tar")
	if r := runCmd(t, berthCmd("save", "-o", archive, busybox), ""); r.code != 0 {
		t.Fatalf("berth save: %s", r)
	}
	reg := startRegistry(t, filepath.Join(dir, "root"), "--htpasswd", writeHtpasswd(t, dir, "bob", "hunter22"))
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(crane, append(args, "--insecure")...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "docker-config"))
		r := runCmd(t, cmd, "")
		if r.code != 0 {
			t.Fatalf("crane %v: %s\nregistry log:\n%s", args, r, reg.logs)
		}
		return strings.TrimSpace(r.stdout)
	}
	cmd := exec.Command(crane, "ls", reg.addr+"/c/busybox", "--insecure")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "docker-config"))
	if r := runCmd(t, cmd, ""); r.code == 0 || !strings.Contains(r.stderr, "UNAUTHORIZED") {
		t.Fatalf("crane without login: %s", r)
	}
	run("auth", "login", reg.addr, "-u", "bob", "-p", "hunter22")
	run("push", archive, reg.addr+"/c/busybox:v1")
	dg := run("digest", reg.addr+"/c/busybox:v1")
	run("tag", reg.addr+"/c/busybox:v1", "v2")
	if got := run("ls", reg.addr+"/c/busybox"); got != "v1\nv2" {
		t.Fatalf("tags: %q", got)
	}
	run("copy", reg.addr+"/c/busybox:v1", reg.addr+"/d/copied:latest")
	if got := run("digest", reg.addr+"/d/copied:latest"); got != dg {
		t.Fatalf("copied digest %s, want %s", got, dg)
	}
	if got := run("catalog", reg.addr); got != "c/busybox\nd/copied" {
		t.Fatalf("catalog: %q", got)
	}
	layout := filepath.Join(dir, "layout")
	run("pull", "--format", "oci", reg.addr+"/d/copied@"+dg, layout)
	index, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil || !strings.Contains(string(index), dg) {
		t.Fatalf("pulled layout index %s (%v)", index, err)
	}
	run("delete", reg.addr+"/c/busybox@"+dg)
	cmd = exec.Command(crane, "manifest", reg.addr+"/c/busybox:v1", "--insecure")
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "docker-config"))
	if r := runCmd(t, cmd, ""); r.code == 0 || !strings.Contains(r.stderr, "MANIFEST_UNKNOWN") {
		t.Fatalf("manifest after delete: %s", r)
	}
}
