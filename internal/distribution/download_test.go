package distribution

import (
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/berth-dev/berth/internal/reference"
	digest "github.com/opencontainers/go-digest"
)

// blobServer serves blob with Range support; breakFirst drops the first transfer after 1 MiB, corrupt
// flips a byte of every transfer.
func blobServer(t *testing.T, blob []byte, breakFirst, corrupt bool) (*httptest.Server, *[]string) {
	var mu sync.Mutex
	var ranges []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ranges = append(ranges, r.Header.Get("Range"))
		n := len(ranges)
		mu.Unlock()
		off := 0
		if rg := r.Header.Get("Range"); rg != "" {
			off, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
			w.Header().Set("Content-Length", strconv.Itoa(len(blob)-off))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
		}
		body := append([]byte(nil), blob[off:]...)
		if corrupt {
			body[len(body)/2] ^= 1
		}
		if n == 1 && breakFirst {
			w.Write(body[:1<<20])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &ranges
}

func TestDownloadResumesAfterABreak(t *testing.T) {
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	srv, ranges := blobServer(t, blob, true, false)
	d := newDownload(t.TempDir(), digest.FromBytes(blob), int64(len(blob)))
	// A follower started before the download reads the whole blob as it arrives.
	got := make(chan []byte)
	go func() {
		f, err := d.follow(nil)
		if err != nil {
			got <- nil
			return
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		got <- b
	}()
	d.run(context.Background(), httpFetch(srv.Client(), srv.URL, int64(len(blob))), func(int64, int64) {})
	if d.err != nil {
		t.Fatal(d.err)
	}
	if b := <-got; string(b) != string(blob) {
		t.Fatalf("follower read %d bytes, want the %d-byte blob", len(b), len(blob))
	}
	if len(*ranges) != 2 || (*ranges)[1] != "bytes=1048576-" {
		t.Errorf("requests' Range headers: %q, want a resume at 1 MiB", *ranges)
	}
}

func TestDownloadRejectsACorruptBlob(t *testing.T) {
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	srv, _ := blobServer(t, blob, false, true)
	d := newDownload(t.TempDir(), digest.FromBytes(blob), int64(len(blob)))
	f := make(chan error)
	go func() {
		r, err := d.follow(nil)
		if err == nil {
			_, err = io.Copy(io.Discard, r)
			r.Close()
		}
		f <- err
	}()
	d.run(context.Background(), httpFetch(srv.Client(), srv.URL, int64(len(blob))), func(int64, int64) {})
	if d.err == nil || !strings.Contains(d.err.Error(), "verification failed") {
		t.Fatalf("err = %v", d.err)
	}
	if err := <-f; err == nil {
		t.Error("the follower reached EOF on a corrupt blob")
	}
	if _, err := os.Stat(d.path); err == nil {
		t.Error("a corrupt blob was kept on disk")
	}
}

func TestInsecureAndServerNames(t *testing.T) {
	s := &Service{cfg: Config{Insecure: []string{"10.1.0.0/16", "reg.example:5000"}}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:1": true, "[::1]:5000": true, "10.1.2.3:443": true,
		"reg.example:5000": true, "reg.example": false, "10.2.0.1": false, "docker.io": false,
	} {
		if got := s.isInsecure(host); got != want {
			t.Errorf("isInsecure(%q) = %v", host, got)
		}
	}
	for in, want := range map[string]string{
		"": "docker.io", "https://index.docker.io/v1/": "docker.io", "http://127.0.0.1:5000/": "127.0.0.1:5000", "reg:5000": "reg:5000",
	} {
		if got := normalizeServer(in); got != want {
			t.Errorf("normalizeServer(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEndpointsPutMirrorsFirstForDockerHubOnly(t *testing.T) {
	s := &Service{cfg: Config{Mirrors: []string{"http://mirror.local:5000/", "https://m2.example"}}}
	hub, _ := reference.ParseNormalizedNamed("busybox")
	eps := s.endpoints(hub, false)
	if len(eps) != 3 || eps[0].host != "mirror.local:5000" || !eps[0].insecure || !eps[0].mirror ||
		eps[1].host != "m2.example" || eps[1].insecure || eps[2].host != "docker.io" || eps[2].mirror {
		t.Errorf("pull endpoints for Docker Hub: %+v", eps)
	}
	if eps := s.endpoints(hub, true); len(eps) != 1 || eps[0].host != "docker.io" {
		t.Errorf("push never goes to a mirror: %+v", eps)
	}
	own, _ := reference.ParseNormalizedNamed("reg.example:5000/x/y:1")
	if eps := s.endpoints(own, false); len(eps) != 1 || eps[0].host != "reg.example:5000" {
		t.Errorf("other registries have no mirrors: %+v", eps)
	}
}
