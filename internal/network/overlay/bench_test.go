package overlay

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/network/plumbing"
)

// BenchmarkPath compares a container-to-container path over the overlay (veth, bridge, VXLAN, the
// underlay, VXLAN, bridge, veth) with the plain bridged path between the two hosts' namespaces (veth,
// bridge, veth): bulk TCP throughput and the round trip of a one-byte request and answer.
//
//	go test -run - -bench Path ./internal/network/overlay
func BenchmarkPath(b *testing.B) {
	l := newLab(b, "a", "b")
	l.ensure("bench", 999)
	ca := l.container("a", "bench", "ca", "10.200.0.2")
	cb := l.container("b", "bench", "cb", "10.200.0.3")
	l.gossip()
	paths := []struct{ name, from, to, addr string }{
		{"overlay", ca, cb, "10.200.0.3"},
		{"bridge", l.hosts["a"].ns, l.hosts["b"].ns, l.hosts["b"].underlay.String()},
	}
	for _, p := range paths {
		sink := listen(b, p.to, p.addr+":5001", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
		echo := listen(b, p.to, p.addr+":5002", func(c net.Conn) { _, _ = io.Copy(c, c) })
		b.Run(p.name+"/throughput", func(b *testing.B) {
			c := dial(b, p.from, sink)
			defer c.Close()
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/roundtrip", func(b *testing.B) {
			c := dial(b, p.from, echo)
			defer c.Close()
			one := []byte{1}
			for b.Loop() { // ns/op is the round trip
				if _, err := c.Write(one); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, one); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func listen(b *testing.B, ns, addr string, handle func(net.Conn)) string {
	var ln net.Listener
	must(b, plumbing.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", addr)
		return err
	}))
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return addr
}

func dial(b *testing.B, ns, addr string) net.Conn {
	var c net.Conn
	must(b, plumbing.Do(ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
		return err
	}))
	if c == nil {
		b.Fatal(fmt.Errorf("no connection to %s", addr))
	}
	return c
}
