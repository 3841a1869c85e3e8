// Package ca is the cluster's certificate authority and its join tokens.
//
// `swarm init` makes a CA (an ECDSA P-256 key and a self-signed certificate). Every node gets a certificate
// from it when it joins: the subject's CN is the node ID, OU its role (swarm-manager or swarm-worker, as
// Docker names them), O the cluster ID. Nodes authenticate each other with these certificates (mutual
// TLS); a node's role is what its certificate's OU says.
//
// A join token is Docker's `SWMTKN-1-<ca digest>-<secret>`: the digest is the SHA-256 of the CA
// certificate (base 36, 50 characters), so a joiner that holds only the token can check it talks to the
// right cluster before it sends anything; the secret says which role the joiner gets.
package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// The roles, as certificate OUs.
const (
	ManagerOU = "swarm-manager"
	WorkerOU  = "swarm-worker"
)

// CertValidity is how long a node certificate lasts (Docker's default expiry).
const CertValidity = 90 * 24 * time.Hour

// MinCertValidity is the shortest --cert-expiry a cluster accepts, as Docker's.
const MinCertValidity = time.Hour

// NeedsRenewal reports whether a node should renew cert now: once less than a third of its lifetime
// (counted from issue, not from NotBefore's allowance for clock skew) is left. Renewal is then due
// well before expiry, whatever the lifetime, and a node down for a while renews as soon as it is back.
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool {
	issued := cert.NotBefore.Add(time.Hour)
	life := cert.NotAfter.Sub(issued)
	return cert.NotAfter.Sub(now) < life/3
}

// CA signs node certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
	KeyPEM  []byte
}

// New makes a CA for the cluster clusterID.
func New(clusterID string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "swarm-ca", Organization: []string{clusterID}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(20 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return Load(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}

// Load reads a CA from its PEM certificate and key.
func Load(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCert(certPEM)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(keyPEM)
	if blk == nil {
		return nil, errors.New("CA key is not PEM")
	}
	key, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key, KeyPEM: keyPEM}, nil
}

// ParseCert reads the first certificate of a PEM block list.
func ParseCert(certPEM []byte) (*x509.Certificate, error) {
	blk, _ := pem.Decode(certPEM)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	return x509.ParseCertificate(blk.Bytes)
}

// Sign issues a certificate for the key in csrPEM: CN nodeID, OU the role's, O the CA's cluster ID. The
// CSR's own subject is ignored: the CA alone says who a node is.
func (c *CA) Sign(csrPEM []byte, nodeID, ou string) ([]byte, error) {
	return c.SignFor(csrPEM, nodeID, ou, CertValidity)
}

// SignFor is Sign with the certificate's lifetime (the cluster's --cert-expiry).
func (c *CA) SignFor(csrPEM []byte, nodeID, ou string, validity time.Duration) ([]byte, error) {
	blk, _ := pem.Decode(csrPEM)
	if blk == nil {
		return nil, errors.New("certificate request is not PEM")
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: nodeID, OrganizationalUnit: []string{ou}, Organization: c.Cert.Subject.Organization},
		DNSNames:     []string{ou, nodeID},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, csr.PublicKey, c.key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// NewKey makes a node key and a certificate request for it; both PEM.
func NewKey() (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "swarm-node"}}, key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}), nil
}

// Verify checks that cert was issued by the CA whose certificate is root, now, for client or server use.
func Verify(root, cert *x509.Certificate) error {
	pool := x509.NewCertPool()
	pool.AddCert(root)
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// Role returns the role OU of a node certificate ("" when it has none).
func Role(cert *x509.Certificate) string {
	for _, ou := range cert.Subject.OrganizationalUnit {
		if ou == ManagerOU || ou == WorkerOU {
			return ou
		}
	}
	return ""
}

// Digest is the CA certificate's fingerprint as it appears in join tokens.
func Digest(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return fmt.Sprintf("%050s", new(big.Int).SetBytes(sum[:]).Text(36))
}

const tokenPrefix = "SWMTKN-1-"

// NewToken returns a fresh join token for the CA.
func NewToken(cert *x509.Certificate) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return tokenPrefix + Digest(cert) + "-" + fmt.Sprintf("%025s", new(big.Int).SetBytes(b[:]).Text(36))
}

// Token is a parsed join token.
type Token struct {
	Digest, Secret string
}

// ParseToken splits a join token; it checks the form only.
func ParseToken(s string) (Token, error) {
	rest, ok := strings.CutPrefix(s, tokenPrefix)
	parts := strings.Split(rest, "-")
	if !ok || len(parts) != 2 || len(parts[0]) != 50 || len(parts[1]) != 25 {
		return Token{}, errors.New("invalid join token")
	}
	return Token{Digest: parts[0], Secret: parts[1]}, nil
}

// SameToken compares two tokens in constant time.
func SameToken(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
