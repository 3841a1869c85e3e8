package archive

import (
	"archive/tar"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzApply when BERTH_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("BERTH_WRITE_SEEDS") != "1" {
		t.Skip("set BERTH_WRITE_SEEDS=1 to regenerate the fuzz corpus")
	}
	seeds := map[string][]ent{
		"dotdot":          {{name: "../../etc/x", body: "x"}},
		"symlink-root":    {{name: "a", typ: tar.TypeSymlink, link: "/"}, {name: "a/etc/x", body: "x"}},
		"symlink-up":      {{name: "b", typ: tar.TypeSymlink, link: "../.."}, {name: "b/x"}},
		"hardlink-passwd": {{name: "pw", typ: tar.TypeLink, link: "/etc/passwd"}},
		"whiteouts":       {{name: "d/", typ: tar.TypeDir}, {name: "d/.wh..wh..opq"}, {name: ".wh.e"}, {name: "d/f", body: "f"}},
		"dir-over-file":   {{name: "z", body: "file"}, {name: "z/", typ: tar.TypeDir}, {name: "z/y"}},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzApply")
	os.MkdirAll(dir, 0o755)
	for name, ents := range seeds {
		data := mkTar(t, ents...)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
