package build

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/ctxsync"
)

// TestSyncedSymlinkNoEscape: a path that was a symlink in the stored tree and comes back as an implicit
// directory must not lead the daemon outside the tree: not when it writes what is inside it, and not
// when it hard-links the tree into a new generation (found by review: the link followed the symlink and
// COPY could then read a host file).
func TestSyncedSymlinkNoEscape(t *testing.T) {
	s, _, _ := newTestService(t)
	ctx := context.Background()
	secretDir := t.TempDir() // outside the store: stands for /etc
	os.WriteFile(filepath.Join(secretDir, "secret"), []byte("TOP-SECRET"), 0o600)
	df := []byte("FROM scratch\n")
	var dirs []ctxsync.Entry
	acc := ""
	for _, c := range strings.Split(strings.Trim(secretDir, "/"), "/") {
		acc = strings.TrimPrefix(acc+"/"+c, "/")
		dirs = append(dirs, ctxsync.Entry{Path: acc, Mode: syscall.S_IFDIR | 0o755})
	}
	sync := func(ents []ctxsync.Entry, hdrs []*tar.Header, twice bool) {
		t.Helper()
		m := ctxsync.Manifest{Version: 1, Dockerfile: df, Entries: ents}
		if twice {
			if _, err := s.SyncContext(ctx, "victim", m); err != nil { // holds a ref: no in-place
				t.Fatal(err)
			}
		}
		ans, err := s.SyncContext(ctx, "victim", m)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			tw.WriteHeader(h)
		}
		tw.Close()
		bc, err := s.openSynced(ctx, ans.Session, &buf)
		if err != nil {
			t.Fatal(err)
		}
		if f, err := bc.root.Open("a/secret"); err == nil {
			got := make([]byte, 64)
			n, _ := f.Read(got)
			f.Close()
			if strings.Contains(string(got[:n]), "TOP-SECRET") {
				t.Fatalf("the synced tree reads a file outside it: %q", got[:n])
			}
		}
		bc.Close()
	}
	// 1: "a" is a symlink to the outside directory; its path also exists inside the tree.
	ents := append([]ctxsync.Entry{}, dirs...)
	ents = append(ents, ctxsync.Entry{Path: "a", Mode: syscall.S_IFLNK | 0o777, Link: secretDir})
	var hdrs []*tar.Header
	for _, d := range dirs {
		hdrs = append(hdrs, &tar.Header{Name: d.Path + "/", Typeflag: tar.TypeDir, Mode: 0o755})
	}
	sync(ents, append(hdrs, &tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: secretDir}), false)
	// 2: "a" left out (implicit directory), "a/secret" a symlink: Diff never refetches "a".
	ents2 := append(append([]ctxsync.Entry{}, dirs...), ctxsync.Entry{Path: "a/secret", Mode: syscall.S_IFLNK | 0o777, Link: "x"})
	sync(ents2, []*tar.Header{{Name: "a/secret", Typeflag: tar.TypeSymlink, Linkname: "x"}}, false)
	// 3: any change, synced while another session holds the tree: linkTree hard-links <base>/a/secret,
	// which the host resolves through the symlink.
	ents3 := append(append([]ctxsync.Entry{}, ents2...), ctxsync.Entry{Path: "z", Mode: syscall.S_IFDIR | 0o755})
	sync(ents3, []*tar.Header{{Name: "z/", Typeflag: tar.TypeDir, Mode: 0o755}}, true)
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(secretDir, "secret"), &st); err != nil || st.Nlink != 1 {
		t.Fatalf("the outside file got hard links from the synced tree: nlink %d, %v", st.Nlink, err)
	}
}
