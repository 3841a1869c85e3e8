// Package transport carries node-to-node traffic over one TCP port (2377 by default): raft's stream and
// the control RPCs (join, heartbeats, writes forwarded to the leader) share it. A connection's first byte,
// sent before TLS starts, says which it is; everything after that byte is TLS.
//
// Every node has a certificate from the cluster's CA (see package ca). Raft connections are mutual TLS both
// ways and both ends must hold a manager certificate. Control connections authenticate the server always;
// the client presents its certificate when it has one, and a joiner, which has none yet, pins the server's
// CA by the digest in its join token instead.
package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/cluster/ca"
	"github.com/hashicorp/raft"
)

const (
	protoRaft    byte = 'R'
	protoControl byte = 'C'
)

// handshakeTimeout bounds how long a peer may take to say what it is and finish TLS.
const handshakeTimeout = 5 * time.Second

// The swarm port is open to the network before any certificate is checked, so what a stranger can hold
// there is bounded: a few handshakes in progress per address (one host cannot fill the queue for the
// others), and the connections of all kinds in total, well below the process's open-files limit.
var (
	MaxPendingPerIP = 32
	MaxConns        = 4096
)

// Identity is a node's TLS identity: its certificate (with key) and the cluster CA that it trusts.
type Identity struct {
	Cert tls.Certificate
	Root *x509.Certificate
}

// NewIdentity builds an identity from PEM files' contents. The CA certificate is appended to the chain the
// node presents, so a joiner can pin it.
func NewIdentity(certPEM, keyPEM, caPEM []byte) (*Identity, error) {
	root, err := ca.ParseCert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	cert, err := tls.X509KeyPair(append(append([]byte{}, certPEM...), caPEM...), keyPEM)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &Identity{Cert: cert, Root: root}, nil
}

// NodeID is the ID the identity's certificate names.
func (id *Identity) NodeID() string { return id.Cert.Leaf.Subject.CommonName }

// Creds holds the node's current identity; it changes when a node is promoted or demoted.
type Creds struct{ p atomic.Pointer[Identity] }

// NewCreds returns creds holding id.
func NewCreds(id *Identity) *Creds {
	c := &Creds{}
	c.p.Store(id)
	return c
}

// Set replaces the identity; connections made after use it.
func (c *Creds) Set(id *Identity) { c.p.Store(id) }

// Get returns the current identity.
func (c *Creds) Get() *Identity { return c.p.Load() }

func (c *Creds) serverConfig() *tls.Config {
	id := c.Get()
	pool := x509.NewCertPool()
	pool.AddCert(id.Root)
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &c.Get().Cert, nil },
		ClientCAs:      pool,
		ClientAuth:     tls.VerifyClientCertIfGiven,
	}
}

// clientConfig verifies the server against the cluster CA (there is no host name to check: peers are
// named by address, and the certificate names the node) and, when wantOU is set, its role.
func (c *Creds) clientConfig(wantOU string) *tls.Config {
	id := c.Get()
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{id.Cert},
		InsecureSkipVerify: true, // replaced by VerifyPeerCertificate below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyPeer(raw, id.Root, wantOU)
		},
	}
}

func verifyPeer(raw [][]byte, root *x509.Certificate, wantOU string) error {
	if len(raw) == 0 {
		return errors.New("peer sent no certificate")
	}
	leaf, err := x509.ParseCertificate(raw[0])
	if err != nil {
		return err
	}
	if err := ca.Verify(root, leaf); err != nil {
		return fmt.Errorf("peer certificate not issued by this cluster's CA: %w", err)
	}
	if wantOU != "" && ca.Role(leaf) != wantOU {
		return fmt.Errorf("peer %s is not a %s", leaf.Subject.CommonName, wantOU)
	}
	return nil
}

// Mux accepts connections on the node's listen address and sorts them into raft and control streams.
type Mux struct {
	ln      net.Listener
	creds   *Creds
	raft    chan net.Conn
	control chan net.Conn
	done    chan struct{}
	once    sync.Once
	// allowRaft, when set, must approve a raft peer's node ID: a certificate alone does not say the node
	// is still a manager (it may have been demoted since it was issued).
	allowRaft atomic.Pointer[func(nodeID string) bool]

	live    atomic.Int64 // open connections
	pmu     sync.Mutex
	pending map[string]int // handshakes in progress by remote address
	// The caps, read once at Listen.
	maxPending int
	maxConns   int64
}

// countedConn gives back its slot of Mux.live when closed.
type countedConn struct {
	net.Conn
	once sync.Once
	live *atomic.Int64
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.live.Add(-1) })
	return c.Conn.Close()
}

// admit reserves a handshake slot for conn's remote address, or says no.
func (m *Mux) admit(conn net.Conn) (string, bool) {
	host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
	if a, err := netip.ParseAddr(host); err == nil && a.Is6() && !a.Is4In6() {
		host = netip.PrefixFrom(a, 64).Masked().String() // one IPv6 host has a whole /64 to rotate through
	}
	m.pmu.Lock()
	defer m.pmu.Unlock()
	if m.pending[host] >= m.maxPending {
		return host, false
	}
	m.pending[host]++
	return host, true
}

func (m *Mux) handshaken(host string) {
	m.pmu.Lock()
	defer m.pmu.Unlock()
	if m.pending[host]--; m.pending[host] <= 0 {
		delete(m.pending, host)
	}
}

// SetRaftFilter makes the mux accept raft streams only from peers whose node ID allow approves.
func (m *Mux) SetRaftFilter(allow func(nodeID string) bool) { m.allowRaft.Store(&allow) }

// Listen starts accepting on addr.
func Listen(addr string, creds *Creds) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &Mux{ln: ln, creds: creds, raft: make(chan net.Conn), control: make(chan net.Conn), done: make(chan struct{}),
		pending: map[string]int{}, maxPending: MaxPendingPerIP, maxConns: int64(MaxConns)}
	go m.serve()
	return m, nil
}

// Addr is the address the mux listens on.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Close stops accepting; connections already handed out stay open.
func (m *Mux) Close() error {
	m.once.Do(func() { close(m.done) })
	return m.ln.Close()
}

func (m *Mux) serve() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.Close()
			return
		}
		if m.live.Add(1) > m.maxConns {
			m.live.Add(-1)
			conn.Close()
			continue
		}
		conn = &countedConn{Conn: conn, live: &m.live}
		host, ok := m.admit(conn)
		if !ok {
			conn.Close()
			continue
		}
		go func() {
			defer m.handshaken(host)
			m.sort(conn)
		}()
	}
}

// sort reads the protocol byte, runs the TLS handshake and hands the connection to its listener.
func (m *Mux) sort(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		conn.Close()
		return
	}
	tc := tls.Server(conn, m.creds.serverConfig())
	if err := tc.Handshake(); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	var ch chan net.Conn
	switch b[0] {
	case protoRaft:
		// Raft peers must be managers of this cluster.
		st := tc.ConnectionState()
		if len(st.PeerCertificates) == 0 || ca.Role(st.PeerCertificates[0]) != ca.ManagerOU {
			tc.Close()
			return
		}
		if allow := m.allowRaft.Load(); allow != nil && !(*allow)(st.PeerCertificates[0].Subject.CommonName) {
			tc.Close()
			return
		}
		ch = m.raft
	case protoControl:
		ch = m.control
	default:
		tc.Close()
		return
	}
	select {
	case ch <- tc:
	case <-m.done:
		tc.Close()
	}
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	m  *Mux
	ch chan net.Conn
}

func (l chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}

func (l chanListener) Close() error   { return nil }
func (l chanListener) Addr() net.Addr { return l.m.ln.Addr() }

// ControlListener returns the listener of control connections, for an http.Server.
func (m *Mux) ControlListener() net.Listener { return chanListener{m: m, ch: m.control} }

// StreamLayer returns raft's stream layer. advertise is the address other managers reach this one at;
// raft records it as this server's address.
func (m *Mux) StreamLayer(advertise net.Addr) raft.StreamLayer {
	return &streamLayer{chanListener: chanListener{m: m, ch: m.raft}, creds: m.creds, advertise: advertise}
}

type streamLayer struct {
	chanListener
	creds     *Creds
	advertise net.Addr
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial opens a raft stream to another manager.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dial(ctx, string(address), protoRaft, s.creds.clientConfig(ca.ManagerOU))
}

func dial(ctx context.Context, addr string, proto byte, cfg *tls.Config) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(handshakeTimeout))
	}
	if _, err := conn.Write([]byte{proto}); err != nil {
		conn.Close()
		return nil, err
	}
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return tc, nil
}

// DialControl opens a control connection to a manager, authenticated by the node's certificate.
func DialControl(ctx context.Context, addr string, creds *Creds) (net.Conn, error) {
	return dial(ctx, addr, protoControl, creds.clientConfig(ca.ManagerOU))
}

// ErrCAMismatch means the manager a joiner dialled is not of the cluster its token names.
var ErrCAMismatch = errors.New("remote CA does not match fingerprint")

// DialJoin opens a control connection for a node that has no certificate yet: the server's chain must end
// in a CA whose digest is caDigest, and the server must be a manager issued by it.
func DialJoin(ctx context.Context, addr, caDigest string) (net.Conn, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pinning below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) < 2 {
				return errors.New("manager did not present its CA")
			}
			root, err := x509.ParseCertificate(raw[len(raw)-1])
			if err != nil {
				return err
			}
			if ca.Digest(root) != caDigest {
				return fmt.Errorf("%w. Expected: %s", ErrCAMismatch, caDigest)
			}
			return verifyPeer(raw, root, ca.ManagerOU)
		},
	}
	return dial(ctx, addr, protoControl, cfg)
}
