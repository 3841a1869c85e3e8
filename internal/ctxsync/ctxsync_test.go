package ctxsync

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/moby/patternmatcher"
)

const (
	dir  = syscall.S_IFDIR | 0o755
	file = syscall.S_IFREG | 0o644
	link = syscall.S_IFLNK | 0o777
)

func st(p string, mode uint32, size, mtime int64) Stored {
	return Stored{Entry: Entry{Path: p, Mode: mode, Size: size, Mtime: mtime, Ctime: mtime, Ino: uint64(len(p))}}
}

func byPath(es ...Stored) map[string]Stored {
	m := map[string]Stored{}
	for _, e := range es {
		m[e.Path] = e
	}
	return m
}

func TestDiff(t *testing.T) {
	old := byPath(st("a", file, 3, 10), st("d", dir, 0, 10), st("d/b", file, 5, 10), st("d/e", dir, 0, 10),
		st("d/e/f", file, 1, 10), st("l", link, 0, 10))
	racy := st("r", file, 1, 10)
	racy.Racy = true
	old["r"] = racy
	chmod := st("a", file, 3, 10)
	chmod.Mode = syscall.S_IFREG | 0o755
	relinked := st("l", link, 0, 10)
	relinked.Link = "elsewhere"
	implicit := Stored{Entry: Entry{Path: "n", Mode: dir}, Implicit: true}
	cases := []struct {
		name      string
		entries   []Stored
		need, del []string
	}{
		{"unchanged", []Stored{st("a", file, 3, 10), st("d", dir, 0, 10), st("d/b", file, 5, 10), st("d/e", dir, 0, 10), st("d/e/f", file, 1, 10), st("l", link, 0, 10), st("r", file, 1, 10)},
			[]string{"r"}, nil},
		{"one file touched", []Stored{st("a", file, 3, 11), st("d", dir, 0, 10), st("d/b", file, 5, 10), st("d/e", dir, 0, 10), st("d/e/f", file, 1, 10), st("l", link, 0, 10)},
			[]string{"a"}, []string{"r"}},
		{"mode and link target", []Stored{chmod, st("d", dir, 0, 10), st("d/b", file, 5, 10), st("d/e", dir, 0, 10), st("d/e/f", file, 1, 10), relinked, st("r", file, 1, 10)},
			[]string{"a", "l", "r"}, nil},
		{"directory gone", []Stored{st("a", file, 3, 10), st("d", dir, 0, 12), st("d/b", file, 5, 10), st("l", link, 0, 10), st("r", file, 1, 10)},
			[]string{"d", "r"}, []string{"d/e/f", "d/e"}},
		{"new under an implicit directory", []Stored{implicit, st("n/x", file, 1, 10)},
			[]string{"n/x"}, []string{"d/e/f", "d/b", "d/e", "a", "d", "l", "r"}},
		{"file becomes directory", []Stored{st("a", dir, 0, 10), st("a/z", file, 1, 10)},
			[]string{"a", "a/z"}, []string{"d/e/f", "d/b", "d/e", "d", "l", "r"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			need, del := Diff(old, tc.entries)
			if !slices.Equal(need, tc.need) {
				t.Errorf("need %q, want %q", need, tc.need)
			}
			if !slices.Equal(del, tc.del) {
				t.Errorf("del %q, want %q", del, tc.del)
			}
		})
	}
	if need, del := Diff(nil, []Stored{st("a", file, 1, 1)}); !slices.Equal(need, []string{"a"}) || del != nil {
		t.Errorf("first sync: need %q del %q", need, del)
	}
}

func TestCheck(t *testing.T) {
	e := func(p string, mode uint32) Entry { return Entry{Path: p, Mode: mode} }
	bad := map[string][]Entry{
		"absolute":          {e("/etc", dir)},
		"dot-dot":           {e("../x", file)},
		"unclean":           {e("a//b", file)},
		"empty":             {e("", file)},
		"twice":             {e("a", file), e("a", file)},
		"under a file":      {e("a", file), e("a/b", file)},
		"under a symlink":   {e("a", link), e("a/b", file)},
		"device":            {e("a", syscall.S_IFCHR|0o600)},
		"negative size":     {{Path: "a", Mode: file, Size: -1}},
		"dot":               {e(".", dir)},
		"dot-dot in middle": {e("a/../b", file)},
	}
	for name, entries := range bad {
		if err := Check(entries); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := Check([]Entry{e("a", dir), e("a/b", file), e("c", link), e("x/y", file)}); err != nil {
		t.Errorf("good manifest: %v", err)
	}
}

func TestPrepare(t *testing.T) {
	now := int64(100e9)
	m := Manifest{Version: Version, ScanStart: now, Dockerignore: []byte("*.log\nsecret/\n!secret/keep\nDockerfile\n"), Entries: []Entry{
		{Path: "Dockerfile", Mode: file, Mtime: 1, Ctime: 1},
		{Path: "a.log", Mode: file, Mtime: 1, Ctime: 1},
		{Path: "fresh", Mode: file, Mtime: 1, Ctime: now - 1e9},
		{Path: "old", Mode: file, Mtime: 1, Ctime: now - 3e9},
		{Path: "secret/keep", Mode: file, Mtime: 1, Ctime: 1},
		{Path: "secret/key", Mode: file, Mtime: 1, Ctime: 1},
		{Path: "src", Mode: dir, Mtime: 1, Ctime: 1},
		{Path: "src/b.log", Mode: file, Mtime: 1, Ctime: 1},
	}}
	got, err := Prepare(m)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range got {
		tag := ""
		if e.Implicit {
			tag = " implicit"
		}
		if e.Racy {
			tag = " racy"
		}
		paths = append(paths, e.Path+tag)
	}
	// "*.log" matches at the top only, as in Docker.
	want := []string{"fresh racy", "old", "secret implicit", "secret/keep", "src", "src/b.log"}
	if !slices.Equal(paths, want) {
		t.Fatalf("prepared %q, want %q", paths, want)
	}
	m.Dockerignore = []byte("[")
	if _, err := Prepare(m); err == nil {
		t.Error("a bad .dockerignore was accepted")
	}
	m.Dockerignore = nil
	m.Entries = []Entry{{Path: "d/x", Mode: file}, {Path: "d", Mode: dir}}
	if _, err := Prepare(m); err == nil {
		t.Error("a directory listed after its contents was accepted")
	}
}

// Walk lists what the context tar would hold, and the manifest of it passes Check.
func TestWalk(t *testing.T) {
	d := t.TempDir()
	for _, p := range []string{"b/c.txt", "b/d.log", "a.txt", "z/keep.log"} {
		os.MkdirAll(filepath.Join(d, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(d, p), []byte(p), 0o644)
	}
	os.Symlink("a.txt", filepath.Join(d, "ln"))
	syscall.Mkfifo(filepath.Join(d, "fifo"), 0o600)
	pm, err := patternmatcher.New([]string{"*.log", "**/*.log", "!z/keep.log", "a.txt"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var entries []Entry
	err = Walk(d, pm, map[string]bool{"a.txt": true}, func(p string, fi fs.FileInfo) error {
		got = append(got, p)
		e, err := EntryOf(p, filepath.Join(d, p), fi)
		entries = append(entries, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a.txt", "b", "b/c.txt", "ln", "z", "z/keep.log"}; !slices.Equal(got, want) {
		t.Fatalf("walked %q, want %q", got, want)
	}
	if err := Check(entries); err != nil {
		t.Fatal(err)
	}
	if entries[3].Link != "a.txt" || entries[0].Size != 5 || entries[1].Type() != syscall.S_IFDIR {
		t.Fatalf("entries %+v", entries)
	}
}
