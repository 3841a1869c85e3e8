package ca

import (
	"strings"
	"testing"
)

func TestSignAndVerify(t *testing.T) {
	c, err := New("cluster1")
	if err != nil {
		t.Fatal(err)
	}
	_, csr, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := c.Sign(csr, "node1", ManagerOU)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ParseCert(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "node1" || Role(cert) != ManagerOU || cert.Subject.Organization[0] != "cluster1" {
		t.Fatalf("subject %v", cert.Subject)
	}
	if err := Verify(c.Cert, cert); err != nil {
		t.Fatal(err)
	}
	other, _ := New("cluster2")
	if err := Verify(other.Cert, cert); err == nil {
		t.Fatal("another cluster's CA verified the certificate")
	}
	// A CA loaded back from its PEM signs as well.
	again, err := Load(c.CertPEM, c.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Sign(csr, "node2", WorkerOU); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign([]byte("junk"), "x", WorkerOU); err == nil {
		t.Fatal("signed a junk request")
	}
}

func TestTokens(t *testing.T) {
	c, _ := New("cluster1")
	tok := NewToken(c.Cert)
	if !strings.HasPrefix(tok, "SWMTKN-1-") || len(tok) != len("SWMTKN-1-")+50+1+25 {
		t.Fatalf("token %q", tok)
	}
	p, err := ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Digest != Digest(c.Cert) {
		t.Fatal("token does not carry the CA digest")
	}
	if NewToken(c.Cert) == tok {
		t.Fatal("two tokens are equal")
	}
	for _, bad := range []string{"", "SWMTKN-1-abc-def", "SWMTKN-2-" + tok[9:], tok + "x", strings.Replace(tok, "-", "_", 2)} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	c, _ := New("c")
	f.Add(NewToken(c.Cert))
	f.Add("SWMTKN-1--")
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParseToken(s); err == nil && (len(p.Digest) != 50 || len(p.Secret) != 25) {
			t.Fatalf("accepted %q", s)
		}
	})
}
