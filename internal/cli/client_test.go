package cli

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fakeDaemon serves the Engine API on a unix socket, answering only API version maxVersion, and records
// the paths it was asked for.
func fakeDaemon(t *testing.T, maxVersion string) (host string, paths func() []string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Api-Version", maxVersion)
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/_ping" {
			w.Write([]byte("OK"))
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/v"+maxVersion+"/") {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"message":"client version 1.51 is too new. Maximum supported API version is ` + maxVersion + `"}`))
			return
		}
		switch strings.TrimPrefix(r.URL.Path, "/v"+maxVersion) {
		case "/containers/json":
			w.Write([]byte(`[{"Id":"0123456789abcdef","Names":["/x"],"Image":"img","Command":"true","Created":1,"State":"exited","Status":"Exited (0) 1 second ago"}]`))
		case "/containers/nope/json":
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"No such container: nope"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"page not found"}`))
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "unix://" + sock, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

func TestPinnedVersionNoPing(t *testing.T) {
	t.Setenv("DOCKER_API_VERSION", "")
	host, paths := fakeDaemon(t, "1.51")
	code, out, errOut := runCLI("-H", host, "ps", "-a", "-q")
	if code != 0 || out != "0123456789ab\n" {
		t.Fatalf("exit %d out %q err %q", code, out, errOut)
	}
	if got := paths(); !reflect.DeepEqual(got, []string{"/v1.51/containers/json"}) {
		t.Errorf("requests = %q, want just the list (no ping)", got)
	}
}

func TestVersionFallback(t *testing.T) {
	t.Setenv("DOCKER_API_VERSION", "")
	host, paths := fakeDaemon(t, "1.41")
	code, out, errOut := runCLI("--host="+host, "ps", "-a", "--format", "{{.Names}} {{.Status}}")
	if code != 0 || out != "x Exited (0) 1 second ago\n" {
		t.Fatalf("exit %d out %q err %q", code, out, errOut)
	}
	want := []string{"/v1.51/containers/json", "/v1.41/containers/json"}
	if got := paths(); !reflect.DeepEqual(got, want) {
		t.Errorf("requests = %q, want %q", got, want)
	}
}

func TestDaemonErrorWording(t *testing.T) {
	host, _ := fakeDaemon(t, "1.51")
	code, _, errOut := runCLI("-H", host, "logs", "nope")
	if code != 1 || errOut != "Error response from daemon: No such container: nope\n" {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
	code, _, errOut = runCLI("-H", host, "rm", "nope", "nope")
	if code != 1 || strings.Count(errOut, "Error response from daemon:") != 2 {
		t.Errorf("rm: exit %d stderr %q", code, errOut)
	}
}

func TestResolveHost(t *testing.T) {
	env := map[string]string{}
	get := func(k string) string { return env[k] }
	if h := resolveHost("", get); h != DefaultHost {
		t.Errorf("default = %q", h)
	}
	env["DOCKER_HOST"] = "unix:///docker.sock"
	if h := resolveHost("", get); h != "unix:///docker.sock" {
		t.Errorf("DOCKER_HOST = %q", h)
	}
	env["BERTH_HOST"] = "unix:///berth.sock"
	if h := resolveHost("", get); h != "unix:///berth.sock" {
		t.Errorf("BERTH_HOST = %q", h)
	}
	if h := resolveHost("tcp://1.2.3.4:2375", get); h != "tcp://1.2.3.4:2375" {
		t.Errorf("flag = %q", h)
	}
}

func TestSplitGlobalFlags(t *testing.T) {
	cases := []struct {
		args []string
		host string
		rest []string
	}{
		{[]string{"-H", "unix:///a", "ps"}, "unix:///a", []string{"ps"}},
		{[]string{"--host=unix:///b", "history", "-H=false", "x"}, "unix:///b", []string{"history", "-H=false", "x"}},
		{[]string{"-Hunix:///c", "run", "-H", "x"}, "unix:///c", []string{"run", "-H", "x"}},
		{[]string{"ps", "-a"}, "", []string{"ps", "-a"}},
	}
	for _, tc := range cases {
		g, rest, err := splitGlobalFlags(tc.args)
		if err != nil || g.host != tc.host || !reflect.DeepEqual(rest, tc.rest) {
			t.Errorf("%q: %q %q %v", tc.args, g.host, rest, err)
		}
	}
	if _, _, err := splitGlobalFlags([]string{"-H"}); err == nil {
		t.Error("-H without value accepted")
	}
}

func TestRunStartErrorCodes(t *testing.T) {
	cases := map[string]int{
		`exec: "nosuch": executable file not found in $PATH`: 127,
		`open /bin/x: no such file or directory`:             127,
		`exec: "/etc/passwd": permission denied`:             126,
		`failed to create task: cgroup: invalid argument`:    125,
	}
	for msg, want := range cases {
		var se *StatusError
		err := runStartError(errString(msg))
		if se = err.(*StatusError); se.StatusCode != want {
			t.Errorf("%q: code %d, want %d", msg, se.StatusCode, want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestGlobalTLSFlags(t *testing.T) {
	g, rest, err := splitGlobalFlags([]string{"--tlsverify", "--tlscacert", "/c/ca.pem", "--tlscert=/c/cert.pem", "--tlskey", "/c/key.pem", "-H", "tcp://h:2376", "ps"})
	if err != nil || g.tlsVerify == nil || !*g.tlsVerify || g.caCert != "/c/ca.pem" || g.cert != "/c/cert.pem" ||
		g.key != "/c/key.pem" || g.host != "tcp://h:2376" || !reflect.DeepEqual(rest, []string{"ps"}) {
		t.Fatalf("%+v %q %v", g, rest, err)
	}
	if g, _, err := splitGlobalFlags([]string{"--tls=false", "ps"}); err != nil || g.tls == nil || *g.tls {
		t.Fatalf("--tls=false: %+v %v", g, err)
	}
	if _, _, err := splitGlobalFlags([]string{"--tlsverify=maybe", "ps"}); err == nil {
		t.Fatal("--tlsverify=maybe accepted")
	}
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	// No flag and no $DOCKER_TLS_VERIFY: plain, even with $DOCKER_CERT_PATH (as docker).
	if cfg, err := clientTLS(globalOptions{}, env(map[string]string{"DOCKER_CERT_PATH": t.TempDir()})); cfg != nil || err != nil {
		t.Fatalf("TLS without asking: %v %v", cfg, err)
	}
	// $DOCKER_TLS_VERIFY with a cert path that has no ca.pem: docker's error, not a silent plain connection.
	if _, err := clientTLS(globalOptions{}, env(map[string]string{"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": t.TempDir()})); err == nil {
		t.Fatal("missing ca.pem accepted")
	}
	// --tls alone: encrypted, the daemon not verified, no client certificate when there is none.
	on := true
	cfg, err := clientTLS(globalOptions{tls: &on}, env(map[string]string{"DOCKER_CERT_PATH": t.TempDir()}))
	if err != nil || cfg == nil || !cfg.InsecureSkipVerify || len(cfg.Certificates) != 0 {
		t.Fatalf("--tls: %+v %v", cfg, err)
	}
}
