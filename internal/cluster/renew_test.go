package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/ca"
	"github.com/berth-dev/berth/internal/cluster/transport"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/swarm"
)

func cert(n *testNode) *x509.Certificate {
	n.s.mu.RLock()
	defer n.s.mu.RUnlock()
	return n.s.creds.Get().Cert.Leaf
}

// Nodes renew their certificates before they expire, with the cluster's --cert-expiry, and keep
// working on the new ones.
func TestCertificateRenewal(t *testing.T) {
	ctx := context.Background()
	// Set before any node runs (the heartbeats read it): the certificates listed in old are due.
	var mu sync.Mutex
	old := map[string]bool{}
	// It is not put back: heartbeats of closed nodes may still read it, and for other certificates it
	// answers as the real one.
	needsRenewal = func(c *x509.Certificate, now time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		return old[c.SerialNumber.String()] || ca.NeedsRenewal(c, now)
	}
	isOld := func(c *x509.Certificate) bool {
		mu.Lock()
		defer mu.Unlock()
		return old[c.SerialNumber.String()]
	}
	m := newNode(t, "m")
	if _, err := m.s.Init(ctx, swarm.InitRequest{ListenAddr: m.addr, AdvertiseAddr: m.addr}); err != nil {
		t.Fatal(err)
	}
	defer m.s.Close()
	sw, _ := m.s.Inspect(ctx)
	w := newNode(t, "w")
	if err := w.s.Join(ctx, swarm.JoinRequest{RemoteAddrs: []string{m.addr}, AdvertiseAddr: w.addr, JoinToken: sw.JoinTokens.Worker}); err != nil {
		t.Fatal(err)
	}
	defer w.s.Close()

	spec := sw.Spec
	spec.CAConfig.NodeCertExpiry = 30 * time.Minute
	if err := m.s.Update(ctx, sw.Version.Index, spec, swarm.UpdateFlags{}); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("a cert expiry under an hour: %v", err)
	}
	spec.CAConfig.NodeCertExpiry = 2 * time.Hour
	if err := m.s.Update(ctx, sw.Version.Index, spec, swarm.UpdateFlags{}); err != nil {
		t.Fatal(err)
	}

	// The first certificates are due; the renewed ones are not.
	mu.Lock()
	for _, n := range []*testNode{m, w} {
		old[cert(n).SerialNumber.String()] = true
	}
	mu.Unlock()
	for _, n := range []*testNode{m, w} {
		waitFor(t, 10*time.Second, "a renewed certificate", func() bool { return !isOld(cert(n)) })
		c := cert(n)
		if life := time.Until(c.NotAfter); life < 110*time.Minute || life > 2*time.Hour {
			t.Fatalf("renewed certificate lasts %s, want the cluster's 2h", life)
		}
		if ca.Role(c) != map[*testNode]string{m: ca.ManagerOU, w: ca.WorkerOU}[n] {
			t.Fatalf("renewal changed the role: %s", ca.Role(c))
		}
	}
	// The manager's swarm port serves the renewed certificate.
	conn, err := transport.DialControl(ctx, m.addr, w.s.creds)
	if err != nil {
		t.Fatal(err)
	}
	served := conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
	conn.Close()
	if isOld(served) || served.SerialNumber.Cmp(cert(m).SerialNumber) != 0 {
		t.Fatalf("the manager's port serves certificate %s, not the renewed %s", served.SerialNumber, cert(m).SerialNumber)
	}
	// Both keep working on their new certificates: a few heartbeats later the worker is still ready
	// and its heartbeats succeed.
	time.Sleep(3 * HeartbeatPeriod)
	wid := w.s.Info(ctx).NodeID
	if n, err := m.s.Node(ctx, wid); err != nil || n.Status.State != swarm.NodeStateReady {
		t.Fatalf("worker after renewal: %v %v", n.Status, err)
	}
	if e := w.s.Info(ctx).Error; e != "" {
		t.Fatalf("worker's heartbeat after renewal: %s", e)
	}
}

func TestNeedsRenewal(t *testing.T) {
	now := time.Now()
	c := &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(90 * 24 * time.Hour)}
	if ca.NeedsRenewal(c, now) || ca.NeedsRenewal(c, now.Add(59*24*time.Hour)) {
		t.Fatal("a fresh certificate is due")
	}
	if !ca.NeedsRenewal(c, now.Add(61*24*time.Hour)) {
		t.Fatal("a certificate with less than a third of its life left is not due")
	}
}
