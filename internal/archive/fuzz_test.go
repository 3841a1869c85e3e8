package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// FuzzApply feeds arbitrary bytes to Apply and checks the one property that matters: whatever the tar
// says, nothing is created outside the destination. Seeds live in testdata/fuzz/FuzzApply.
func FuzzApply(f *testing.F) {
	testutil.RequireRoot(f)
	f.Add(mkTar(f, ent{name: "../../x"}, ent{name: "a", typ: '2', link: "/"}, ent{name: "a/y"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dst, outside := filepath.Join(parent, "dst"), filepath.Join(parent, "outside")
		os.Mkdir(dst, 0o755)
		os.Mkdir(outside, 0o755)
		for _, overlay := range []bool{false, true} {
			Apply(context.Background(), dst, bytes.NewReader(data), ApplyOptions{Overlay: overlay, NoDevices: true})
		}
		ents, _ := os.ReadDir(parent)
		if len(ents) != 2 {
			t.Fatalf("escaped into %s: %v", parent, ents)
		}
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("escaped into %s: %v", outside, ents)
		}
	})
}
