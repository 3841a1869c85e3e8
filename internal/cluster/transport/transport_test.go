package transport

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/ca"
	"github.com/hashicorp/raft"
)

func identity(t *testing.T, c *ca.CA, id, ou string) *Identity {
	t.Helper()
	key, csr, err := ca.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := c.Sign(csr, id, ou)
	if err != nil {
		t.Fatal(err)
	}
	ident, err := NewIdentity(cert, key, c.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ident
}

// accept returns the next connection l gets within a second, or nil.
func accept(l net.Listener) net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			ch <- c
		}
	}()
	select {
	case c := <-ch:
		return c
	case <-time.After(time.Second):
		return nil
	}
}

func TestMuxSortsAndAuthenticates(t *testing.T) {
	authority, _ := ca.New("c1")
	m1 := identity(t, authority, "m1", ca.ManagerOU)
	mux, err := Listen("127.0.0.1:0", NewCreds(m1))
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	addr := mux.Addr().String()
	layer := mux.StreamLayer(mux.Addr())
	ctl := mux.ControlListener()

	// Manager to manager: a raft stream, both ways authenticated.
	m2 := NewCreds(identity(t, authority, "m2", ca.ManagerOU))
	peerLayer := (&Mux{creds: m2}).StreamLayer(nil)
	c, err := peerLayer.Dial(raft.ServerAddress(addr), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	go c.Write([]byte("ping"))
	sc := accept(layer)
	if sc == nil {
		t.Fatal("raft stream not accepted")
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q %v", buf, err)
	}
	c.Close()
	sc.Close()

	// A manager certificate is not enough once the filter says the node is no longer a manager.
	mux.SetRaftFilter(func(id string) bool { return id != "m2" })
	if c, err := peerLayer.Dial(raft.ServerAddress(addr), time.Second); err == nil {
		c.Write([]byte("x"))
		if accept(layer) != nil {
			t.Fatal("a filtered-out manager opened a raft stream")
		}
		c.Close()
	}
	mux.SetRaftFilter(func(string) bool { return true })

	// A worker may open control streams but not raft streams.
	w := NewCreds(identity(t, authority, "w1", ca.WorkerOU))
	cc, err := DialControl(context.Background(), addr, w)
	if err != nil {
		t.Fatal(err)
	}
	if accept(ctl) == nil {
		t.Fatal("worker's control stream not accepted")
	}
	cc.Close()
	if c, err := (&Mux{creds: w}).StreamLayer(nil).Dial(raft.ServerAddress(addr), time.Second); err == nil {
		c.Write([]byte("x"))
		if accept(layer) != nil {
			t.Fatal("a worker opened a raft stream")
		}
		c.Close()
	}

	// A node of another cluster is refused at the handshake.
	other, _ := ca.New("c2")
	stranger := NewCreds(identity(t, other, "s", ca.ManagerOU))
	if c, err := DialControl(context.Background(), addr, stranger); err == nil {
		c.Close()
		t.Fatal("a node of another cluster connected")
	}

	// A joiner pins the CA by its digest.
	if c, err := DialJoin(context.Background(), addr, ca.Digest(authority.Cert)); err != nil {
		t.Fatalf("join dial with the right digest: %v", err)
	} else {
		c.Close()
		accept(ctl)
	}
	if _, err := DialJoin(context.Background(), addr, ca.Digest(other.Cert)); err == nil || !errors.Is(err, ErrCAMismatch) && !strings.Contains(err.Error(), ErrCAMismatch.Error()) {
		t.Fatalf("join dial with another CA's digest: %v", err)
	}
}

// One address cannot hold more than MaxPendingPerIP handshakes open, nor anybody more than MaxConns
// connections; a node still gets in once the strangers are gone.
func TestMuxCapsConnections(t *testing.T) {
	defer func(p, c int) { MaxPendingPerIP, MaxConns = p, c }(MaxPendingPerIP, MaxConns)
	MaxPendingPerIP, MaxConns = 4, 6
	authority, _ := ca.New("c1")
	mux, err := Listen("127.0.0.1:0", NewCreds(identity(t, authority, "m1", ca.ManagerOU)))
	if err != nil {
		t.Fatal(err)
	}
	defer mux.Close()
	addr := mux.Addr().String()
	closedSoon := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	}
	var idle []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !closedSoon(extra) {
		t.Fatal("a fifth handshake from one address was let wait")
	}
	extra.Close()
	for _, c := range idle {
		if closedSoon(c) {
			t.Fatal("an admitted connection was closed before its handshake timed out")
		}
	}
	for _, c := range idle {
		c.Close()
	}
	w := NewCreds(identity(t, authority, "w1", ca.WorkerOU))
	eventuallyDial := func() net.Conn {
		deadline := time.Now().Add(2 * time.Second)
		for {
			c, err := DialControl(context.Background(), addr, w)
			if err == nil {
				return c
			}
			if time.Now().After(deadline) {
				t.Fatalf("control dial after the strangers left: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ctl := mux.ControlListener()
	var open []net.Conn
	for range MaxConns {
		c := eventuallyDial()
		if accept(ctl) == nil {
			t.Fatal("control stream not accepted")
		}
		open = append(open, c)
	}
	over, err := net.Dial("tcp", addr)
	if err == nil {
		if !closedSoon(over) {
			t.Fatal("a connection over MaxConns was kept")
		}
		over.Close()
	}
	for _, c := range open {
		c.Close()
	}
}
