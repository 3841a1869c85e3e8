package registry

import (
	"crypto/rand"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// BenchmarkBlobGet measures blob downloads over loopback TCP (a 200 MB blob; sendfile on the server
// side). Run: go test -run x -bench BlobGet -benchtime 10x ./internal/registry
func BenchmarkBlobGet(b *testing.B) {
	const size = 200 << 20
	root := b.TempDir()
	h, err := New(Config{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	s := h.(*server).store
	f, err := os.Create(filepath.Join(root, "tmp", "src"))
	if err != nil {
		b.Fatal(err)
	}
	dg := digest.SHA256.Digester()
	if _, err := io.CopyN(io.MultiWriter(f, dg.Hash()), rand.Reader, size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	d := dg.Digest()
	if err := s.commitBlob(f.Name(), d); err != nil {
		b.Fatal(err)
	}
	if err := s.link("bench", d); err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	ln := listenLoopback(b)
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/v2/bench/blobs/" + d.String()
	// The client reads with a large buffer: io.Discard's own ReadFrom uses 8 KiB reads, which would
	// measure the client's syscalls rather than the server.
	buf := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, resp.Body, buf)
		resp.Body.Close()
		if err != nil || n != size {
			b.Fatalf("read %d bytes: %v", n, err)
		}
	}
}

func listenLoopback(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}
