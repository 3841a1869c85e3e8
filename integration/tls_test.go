package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// The test daemon also serves the API on tcp://127.0.0.1 with mutual TLS (--tlsverify), certificates
// from a CA made for this run; a second CA that it does not trust stands for an outsider.
var tlsEnv struct {
	addr         string // host:port
	pki, outside testutil.PKI
	noCerts      string // an empty directory, as $DOCKER_CERT_PATH without certificates
}

func setupTLS() error {
	var err error
	if tlsEnv.pki, err = testutil.WritePKI(filepath.Join(env.tmp, "pki")); err != nil {
		return err
	}
	if tlsEnv.outside, err = testutil.WritePKI(filepath.Join(env.tmp, "pki-outside")); err != nil {
		return err
	}
	tlsEnv.noCerts = filepath.Join(env.tmp, "no-certs")
	if err := os.MkdirAll(tlsEnv.noCerts, 0o700); err != nil {
		return err
	}
	// A port free now; the daemon binds it a moment later (and again after the restart tests).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	tlsEnv.addr = l.Addr().String()
	return l.Close()
}

func tlsDaemonArgs() []string {
	p := tlsEnv.pki
	return []string{"-H", "unix://" + env.sock, "-H", "tcp://" + tlsEnv.addr,
		"--tlsverify", "--tlscacert", p.CA, "--tlscert", p.ServerCert, "--tlskey", p.ServerKey}
}

// cleanEnv is the environment without any docker/berth address or TLS setting of the caller's.
func cleanEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "DOCKER_HOST", "BERTH_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_TLS", "DOCKER_CONTEXT":
			continue
		}
		out = append(out, kv)
	}
	return append(append(out, "DOCKER_CONFIG="+filepath.Join(env.tmp, "docker-config")), extra...)
}

// TestTLSDockerCLI drives the TCP API with the stock docker CLI: with the CA's client certificate it
// works (including an attached run, whose connection is hijacked under TLS); without a certificate,
// with one from another CA, against a CA that did not sign the daemon, or in plain HTTP, it does not.
func TestTLSDockerCLI(t *testing.T) {
	p := tlsEnv.pki
	withCert := func(ca, cert, key string, args ...string) result {
		flags := []string{"-H", "tcp://" + tlsEnv.addr, "--tlsverify", "--tlscacert", ca}
		if cert != "" {
			flags = append(flags, "--tlscert", cert, "--tlskey", key)
		}
		cmd := exec.Command(dockerBin(), append(flags, args...)...)
		cmd.Env = cleanEnv("DOCKER_CERT_PATH=" + tlsEnv.noCerts)
		return runCmd(t, cmd, "")
	}
	r := withCert(p.CA, p.ClientCert, p.ClientKey, "version", "--format", "{{.Server.Version}}")
	if r.code != 0 || strings.TrimSpace(r.stdout) == "" {
		t.Fatalf("docker --tlsverify version: %s", r)
	}
	r = withCert(p.CA, p.ClientCert, p.ClientKey, "run", "--rm", busybox, "echo", "over-tls")
	if r.code != 0 || r.stdout != "over-tls\n" {
		t.Fatalf("docker --tlsverify run: %s", r)
	}
	if r := withCert(p.CA, p.ClientCert, p.ClientKey, "run", "--rm", busybox, "true"); r.code != 0 {
		t.Fatalf("docker --tlsverify run true: %s", r)
	}

	refused := map[string]result{
		"no client certificate":                 withCert(p.CA, "", "", "version"),
		"client certificate from another CA":    withCert(p.CA, tlsEnv.outside.ClientCert, tlsEnv.outside.ClientKey, "version"),
		"daemon not signed by the trusted CA":   withCert(tlsEnv.outside.CA, p.ClientCert, p.ClientKey, "version"),
		"no client certificate, creating":       withCert(p.CA, "", "", "create", busybox),
		"another CA's certificate, running":     withCert(p.CA, tlsEnv.outside.ClientCert, tlsEnv.outside.ClientKey, "run", "--rm", busybox, "true"),
		"plain HTTP to the TLS port (no --tls)": runPlain(t, "version"),
	}
	for what, r := range refused {
		if r.code == 0 {
			t.Errorf("%s: served: %s", what, r)
		}
		if strings.Contains(r.stdout, "Server:") && strings.Contains(r.stdout, "Berth") {
			t.Errorf("%s: the server answered: %s", what, r)
		}
		t.Logf("%s: %s", what, strings.TrimSpace(r.stderr))
	}
}

func runPlain(t *testing.T, args ...string) result {
	cmd := exec.Command(dockerBin(), append([]string{"-H", "tcp://" + tlsEnv.addr}, args...)...)
	cmd.Env = cleanEnv()
	return runCmd(t, cmd, "")
}

// TestTLSBerthCLI does the same with the berth CLI, configured the docker way: $DOCKER_CERT_PATH and
// $DOCKER_TLS_VERIFY, or the --tls* flags.
func TestTLSBerthCLI(t *testing.T) {
	host := "tcp://" + tlsEnv.addr
	berthEnv := func(args []string, extra ...string) result {
		cmd := exec.Command(env.berth, args...)
		cmd.Env = cleanEnv(append([]string{"BERTH_HOST=" + host}, extra...)...)
		return runCmd(t, cmd, "")
	}
	good := []string{"DOCKER_CERT_PATH=" + tlsEnv.pki.Dir, "DOCKER_TLS_VERIFY=1"}
	if r := berthEnv([]string{"version", "--format", "{{.Server.Version}}"}, good...); r.code != 0 || strings.TrimSpace(r.stdout) == "" {
		t.Fatalf("berth version with DOCKER_CERT_PATH: %s", r)
	}
	if r := berthEnv([]string{"run", "--rm", busybox, "echo", "berth-tls"}, good...); r.code != 0 || r.stdout != "berth-tls\n" {
		t.Fatalf("berth run with DOCKER_CERT_PATH: %s", r)
	}
	p := tlsEnv.pki
	flags := []string{"--tlsverify", "--tlscacert", p.CA, "--tlscert", p.ClientCert, "--tlskey", p.ClientKey, "-H", host, "ps", "-a"}
	if r := berthEnv(flags, "DOCKER_CERT_PATH="+tlsEnv.noCerts); r.code != 0 || !strings.Contains(r.stdout, "CONTAINER ID") {
		t.Fatalf("berth --tlsverify ... ps: %s", r)
	}

	// A directory with the CA but no client certificate.
	caOnly := t.TempDir()
	ca, err := os.ReadFile(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(caOnly, "ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	refused := map[string]result{
		"no client certificate":  berthEnv([]string{"ps"}, "DOCKER_CERT_PATH="+caOnly, "DOCKER_TLS_VERIFY=1"),
		"another CA's cert path": berthEnv([]string{"ps"}, "DOCKER_CERT_PATH="+tlsEnv.outside.Dir, "DOCKER_TLS_VERIFY=1"),
		"plain HTTP":             berthEnv([]string{"ps"}),
		"another CA's certificate, run": berthEnv([]string{"--tlsverify", "--tlscacert", p.CA, "--tlscert", tlsEnv.outside.ClientCert,
			"--tlskey", tlsEnv.outside.ClientKey, "run", "--rm", busybox, "true"}),
	}
	for what, r := range refused {
		if r.code == 0 || strings.Contains(r.stdout, "CONTAINER ID") {
			t.Errorf("%s: served: %s", what, r)
		}
		t.Logf("%s: %s", what, strings.TrimSpace(r.stderr))
	}
}

// TestTCPNeedsTLS: -H tcp:// without TLS flags is refused before the daemon touches anything.
func TestTCPNeedsTLS(t *testing.T) {
	roots := t.TempDir()
	data, exec2 := filepath.Join(roots, "data"), filepath.Join(roots, "exec")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-H", "tcp://127.0.0.1:0"}, "refusing to listen on tcp://127.0.0.1:0 without TLS"},
		{[]string{"-H", "tcp://127.0.0.1:0", "--tlsverify", "--tlscert", tlsEnv.pki.ServerCert, "--tlskey", tlsEnv.pki.ServerKey}, "--tlsverify needs --tlscacert"},
		{[]string{"-H", "unix://" + filepath.Join(roots, "s.sock"), "-G", "no-such-group-berth-it"}, "--group no-such-group-berth-it: no such group"},
	}
	for _, tc := range cases {
		cmd := exec.Command(env.berthd, append([]string{"--data-root", data, "--exec-root", exec2, "--bridge", "berthitx0"}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("berthd %v started: %s", tc.args, out)
		}
		if !strings.Contains(string(out), tc.want) {
			t.Errorf("berthd %v: %s\nwant %q", tc.args, out, tc.want)
		}
		if fileExists(data) || fileExists(exec2) {
			t.Errorf("berthd %v made its roots before refusing", tc.args)
		}
	}
}

// TestSocketPermissions: the test daemon runs with the default -G berth; its socket is 0660, owned by
// root and by the berth group when there is one.
func TestSocketPermissions(t *testing.T) {
	fi, err := os.Stat(env.sock)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	wantGID := uint32(0)
	if g, err := user.LookupGroup("berth"); err == nil {
		fmt.Sscan(g.Gid, &wantGID)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || st.Uid != 0 || st.Gid != wantGID {
		t.Fatalf("socket %s: mode %v owner %d:%d, want 0660 0:%d", env.sock, fi.Mode(), st.Uid, st.Gid, wantGID)
	}
}
