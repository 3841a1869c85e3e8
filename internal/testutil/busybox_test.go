package testutil

import (
	"archive/tar"
	"os"
	"path/filepath"
	"testing"
)

func TestBusyboxTar(t *testing.T) {
	p := BusyboxTar(t, filepath.Join(t.TempDir(), "bb.tar"))
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		seen[h.Name] = true
	}
	for _, want := range []string{"bin/busybox", "bin/sh", "etc/passwd", "tmp/"} {
		if !seen[want] {
			t.Errorf("tar lacks %s", want)
		}
	}
}
