package daemon

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/docker/go-connections/tlsconfig"
)

func TestListenOptionsCheck(t *testing.T) {
	tcp := []string{"unix:///x.sock", "tcp://127.0.0.1:2376"}
	cases := []struct {
		name string
		o    ListenOptions
		want string // "" = accepted
	}{
		{"unix only", ListenOptions{Hosts: []string{"unix:///x.sock"}}, ""},
		{"tcp without TLS", ListenOptions{Hosts: tcp}, "--insecure-tcp"},
		{"tcp insecure", ListenOptions{Hosts: tcp, InsecureTCP: true}, ""},
		{"tlsverify without CA", ListenOptions{Hosts: tcp, TLSVerify: true, TLSCert: "c", TLSKey: "k"}, "--tlscacert"},
		{"tlsverify without cert", ListenOptions{Hosts: tcp, TLSVerify: true, TLSCACert: "a", TLSKey: "k"}, "--tlscert"},
		{"tlsverify", ListenOptions{Hosts: tcp, TLSVerify: true, TLSCACert: "a", TLSCert: "c", TLSKey: "k"}, ""},
		{"tls without verify", ListenOptions{Hosts: tcp, TLS: true, TLSCert: "c", TLSKey: "k"}, ""},
		{"TLS flags without tcp", ListenOptions{Hosts: []string{"unix:///x.sock"}, TLSVerify: true}, ""},
		{"missing explicit group", ListenOptions{Hosts: []string{"unix:///x.sock"}, SocketGroup: "no-such-group-xyz"}, "no such group"},
		{"missing default group", ListenOptions{Hosts: []string{"unix:///x.sock"}, SocketGroup: DefaultSocketGroup}, ""},
	}
	if _, err := user.LookupGroup(DefaultSocketGroup); err == nil {
		cases = cases[:len(cases)-1]
	}
	for _, tc := range cases {
		err := tc.o.check()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

// TestUnixSocketOwnership checks the socket file itself: mode 0660, owned by root and the -G group.
func TestUnixSocketOwnership(t *testing.T) {
	testutil.RequireRoot(t)
	// An existing group that is not root's, by name and by number.
	g, err := user.LookupGroup("daemon")
	if err != nil {
		t.Skip("no 'daemon' group here")
	}
	cases := []struct{ group, gid string }{{"", "0"}, {"daemon", g.Gid}, {g.Gid, g.Gid}}
	if _, err := user.LookupGroup(DefaultSocketGroup); err != nil {
		cases = append(cases, struct{ group, gid string }{DefaultSocketGroup, "0"})
	}
	for _, tc := range cases {
		path := filepath.Join(t.TempDir(), "api.sock")
		l, err := listenUnix(path, tc.group)
		if err != nil {
			t.Fatalf("-G %q: %v", tc.group, err)
		}
		fi, err := os.Stat(path)
		l.Close()
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != 0o660 || st.Uid != 0 || strconv.FormatUint(uint64(st.Gid), 10) != tc.gid {
			t.Errorf("-G %q: mode %o owner %d:%d, want 0660 0:%s", tc.group, fi.Mode().Perm(), st.Uid, st.Gid, tc.gid)
		}
	}
}

// TestMutualTLSListener serves HTTP on a --tlsverify listener and tries it with the right client
// certificate, with none, and with one from another CA.
func TestMutualTLSListener(t *testing.T) {
	dir := t.TempDir()
	good, err := testutil.WritePKI(filepath.Join(dir, "good"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := testutil.WritePKI(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	o := ListenOptions{
		Hosts: []string{"tcp://127.0.0.1:0"}, TLSVerify: true,
		TLSCACert: good.CA, TLSCert: good.ServerCert, TLSKey: good.ServerKey,
	}
	ls, err := listenAll(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })}
	go srv.Serve(ls[0])
	t.Cleanup(func() { srv.Close() })
	url := "https://" + ls[0].Addr().String() + "/_ping"

	get := func(cert, key string) error {
		cfg, err := tlsconfig.Client(tlsconfig.Options{CAFile: good.CA, CertFile: cert, KeyFile: key, ExclusiveRootPools: true})
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !bytes.Equal(body, []byte("OK")) {
			t.Errorf("body %q", body)
		}
		return nil
	}
	if err := get(good.ClientCert, good.ClientKey); err != nil {
		t.Fatalf("client with a certificate from the CA: %v", err)
	}
	if err := get("", ""); err == nil {
		t.Error("client without a certificate was served")
	}
	if err := get(other.ClientCert, other.ClientKey); err == nil {
		t.Error("client with a certificate from another CA was served")
	}
	// Go's client only offers a certificate that the server's CA list names; offer the outsider's anyway.
	foreign, err := tls.LoadX509KeyPair(other.ClientCert, other.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := tlsconfig.Client(tlsconfig.Options{CAFile: good.CA, ExclusiveRootPools: true})
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreign, nil }
	fc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	if resp, err := fc.Get(url); err == nil {
		resp.Body.Close()
		t.Error("a presented certificate from another CA was accepted")
	} else if !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Errorf("foreign certificate: %v", err)
	}
	fc.CloseIdleConnections()
	// A plain HTTP client gets no API either.
	resp, err := http.Get("http://" + ls[0].Addr().String() + "/_ping")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) == "OK" {
			t.Error("plain HTTP was served on the TLS port")
		}
	}
	// --tls alone: the server's certificate, no client certificate needed.
	o.TLSVerify, o.TLS, o.TLSCACert = false, true, ""
	ls2, err := listenAll(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ls2[0].Close()
	go func() {
		c, err := ls2[0].Accept()
		if err == nil {
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ls2[0].Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("--tls without client certificate: %v", err)
	}
	c.Close()
}

// TestInsecureTCPWarns: --insecure-tcp serves plain HTTP, and says so loudly in the log.
func TestInsecureTCPWarns(t *testing.T) {
	var logs bytes.Buffer
	ls, err := listenAll(ListenOptions{Hosts: []string{"tcp://127.0.0.1:0"}, InsecureTCP: true}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer ls[0].Close()
	if _, ok := ls[0].(*net.TCPListener); !ok {
		t.Fatalf("listener %T, want plain TCP", ls[0])
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "WITHOUT TLS") {
		t.Fatalf("no warning: %s", logs.String())
	}
}
