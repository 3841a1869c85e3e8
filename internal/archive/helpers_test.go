package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

var epoch = time.Unix(1700000000, 0)

type ent struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	xattrs           map[string]string
	major, minor     int64
}

func mkTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: epoch, Devmajor: e.major, Devminor: e.minor}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[xattrPAXPrefix+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func apply(t testing.TB, dst string, data []byte, opts ApplyOptions) error {
	t.Helper()
	_, err := Apply(context.Background(), dst, bytes.NewReader(data), opts)
	return err
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// sandbox returns dst and a sibling directory that must stay empty, plus a check that it did.
func sandbox(t *testing.T) (dst, outside string) {
	testutil.RequireRoot(t)
	parent := t.TempDir()
	dst, outside = filepath.Join(parent, "dst"), filepath.Join(parent, "outside")
	os.Mkdir(dst, 0o755)
	os.Mkdir(outside, 0o755)
	return dst, outside
}

func assertUntouched(t *testing.T, outside string) {
	t.Helper()
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Fatalf("something escaped into %s: %v", outside, ents)
	}
	parentEnts, _ := os.ReadDir(filepath.Dir(outside))
	if len(parentEnts) != 2 {
		t.Fatalf("something escaped into %s: %v", filepath.Dir(outside), parentEnts)
	}
}
