// Package ctxsync is Berth's build context file sync: the wire shapes of POST
// /berth/build/context/{id}/sync, the walk that lists a context directory, and the comparison that tells
// which files the daemon needs again.
//
// Instead of uploading the whole context tar on every build, `berth build` sends a manifest of the
// context's metadata (path, mode, size, mtime, ctime, inode, device, owner, link target; no content).
// The daemon keeps the tree it last received for that context id, answers with the paths whose metadata
// changed or that are new, and the client sends only those, as a tar in the body of POST /build with the
// X-Berth-Context header naming the sync session. Paths missing from the manifest are deleted.
//
// A changed file always has changed stat data (its mtime, ctime, size or inode), the trust git's index
// and BuildKit's fsutil place in it. The one gap is a file changed again within the filesystem's
// timestamp granularity of being listed ("racy git"): a regular file whose mtime or ctime lies within
// RacyWindow of the scan's start is never trusted, so it is sent again on the next build.
package ctxsync

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// Version is the protocol version this package speaks. A daemon answers 400 to a version it does not
// know and a client then falls back to the tar upload.
const Version = 1

// Header names the sync session on POST /build.
const Header = "X-Berth-Context"

// RacyWindow: files changed this close (in nanoseconds) to the scan's start are sent again next time.
const RacyWindow = int64(2e9)

// Entry is one path of the context and its stat data.
type Entry struct {
	Path  string `json:"p"` // slash-separated, relative to the context's top, clean
	Mode  uint32 `json:"m"` // st_mode: type and permission bits
	Size  int64  `json:"s,omitempty"`
	Mtime int64  `json:"t"` // Unix nanoseconds
	Ctime int64  `json:"c"`
	Ino   uint64 `json:"i"`
	Dev   uint64 `json:"d"`
	UID   uint32 `json:"u,omitempty"`
	GID   uint32 `json:"g,omitempty"`
	Link  string `json:"l,omitempty"` // a symlink's target
}

// Type is the entry's file type bits (syscall.S_IFDIR, S_IFREG, S_IFLNK).
func (e Entry) Type() uint32 { return e.Mode & syscall.S_IFMT }

// Manifest is POST /berth/build/context/{id}/sync's body.
type Manifest struct {
	Version int
	// ScanStart is when the client started listing (Unix nanoseconds), for the racy-file rule.
	ScanStart int64
	// Dockerfile is the build's Dockerfile, sent whole: it need not be in the tree (.dockerignore may
	// exclude it, -f may name a file outside the context or stdin).
	Dockerfile []byte
	// Dockerignore is the context's .dockerignore (nil when there is none). The daemon applies it again
	// to the manifest, so no client can make COPY see an excluded file.
	Dockerignore []byte
	// Entries in walk order: a directory before what is in it, names sorted.
	Entries []Entry
}

// Answer is the reply to a manifest.
type Answer struct {
	Version int
	// Session names this sync on the POST /build that follows (the X-Berth-Context header).
	Session string
	// Need are the paths whose content or metadata the daemon lacks: the client sends them as a tar.
	Need []string
}

// Walk lists the context directory dir as the context tar has it: names sorted, parents before
// children, leaving out what pm excludes except the paths in keep (an excluded directory is still
// entered when pm has exceptions, which may bring back something inside it). Only directories, regular
// files and symlinks are listed; sockets, devices and fifos never go into a context.
func Walk(dir string, pm *patternmatcher.PatternMatcher, keep map[string]bool, fn func(p string, fi fs.FileInfo) error) error {
	var walk func(rel string, parent patternmatcher.MatchInfo) error
	walk = func(rel string, parent patternmatcher.MatchInfo) error {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		slices.Sort(names)
		for _, n := range names {
			p := path.Join(rel, n)
			excluded, info, err := pm.MatchesUsingParentResults(p, parent)
			if err != nil {
				return err
			}
			fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
			if err != nil {
				return err
			}
			if excluded && !keep[p] && !(fi.IsDir() && pm.Exclusions()) {
				continue
			}
			if (!excluded || keep[p]) && fi.Mode()&(fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) == 0 {
				if err := fn(p, fi); err != nil {
					return err
				}
			}
			if fi.IsDir() {
				if err := walk(p, info); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk("", patternmatcher.MatchInfo{})
}

// EntryOf is the manifest entry for fi, found at p in the context directory (abs is its path on disk,
// for a symlink's target).
func EntryOf(p, abs string, fi fs.FileInfo) (Entry, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Entry{}, fmt.Errorf("%s: no stat data", p)
	}
	e := Entry{Path: p, Mode: st.Mode, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino, Dev: uint64(st.Dev), UID: st.Uid, GID: st.Gid}
	switch e.Type() {
	case syscall.S_IFREG:
		e.Size = st.Size
	case syscall.S_IFLNK:
		l, err := os.Readlink(abs)
		if err != nil {
			return Entry{}, err
		}
		e.Link = l
	}
	return e, nil
}

// Check validates a manifest's entries: clean relative paths without "..", each once, a directory, a
// regular file or a symlink, and every parent listed before its children as a directory (or not listed
// at all: an excluded directory whose exception kept something inside it).
func Check(entries []Entry) error {
	seen := make(map[string]uint32, len(entries))
	for _, e := range entries {
		p := e.Path
		if p == "" || p == "." || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
			return fmt.Errorf("invalid path %q in the context manifest", p)
		}
		switch e.Type() {
		case syscall.S_IFDIR, syscall.S_IFREG, syscall.S_IFLNK:
		default:
			return fmt.Errorf("%s: unsupported file type %o in the context manifest", p, e.Type())
		}
		if e.Size < 0 {
			return fmt.Errorf("%s: negative size in the context manifest", p)
		}
		if _, dup := seen[p]; dup {
			return fmt.Errorf("%s is listed twice in the context manifest", p)
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if t, ok := seen[d]; ok && t != syscall.S_IFDIR {
				return fmt.Errorf("%s: its parent %s is not a directory", p, d)
			}
		}
		seen[p] = e.Type()
	}
	return nil
}

// Stored is what the daemon keeps of an entry it received.
type Stored struct {
	Entry
	// Racy: the file changed so close to the scan that its stat data may not show a later change.
	Racy bool
	// Implicit: a directory not in the manifest (excluded, but something inside it kept).
	Implicit bool
}

// Prepare checks a manifest and turns it into what the daemon keeps: entries .dockerignore excludes are
// dropped (as the daemon's own ignore pass does for a context tar), directories that are not listed but
// hold something get an implicit entry, and racy regular files are marked.
func Prepare(m Manifest) ([]Stored, error) {
	if err := Check(m.Entries); err != nil {
		return nil, err
	}
	var pm *patternmatcher.PatternMatcher
	if len(m.Dockerignore) > 0 {
		patterns, err := ignorefile.ReadAll(bytes.NewReader(m.Dockerignore))
		if err != nil {
			return nil, fmt.Errorf("reading .dockerignore: %w", err)
		}
		if len(patterns) > 0 {
			if pm, err = patternmatcher.New(patterns); err != nil {
				return nil, fmt.Errorf("invalid .dockerignore: %w", err)
			}
		}
	}
	infos := map[string]patternmatcher.MatchInfo{}
	dropped := map[string]bool{}
	var matchDir func(d string) (excluded bool, info patternmatcher.MatchInfo, err error)
	matchDir = func(d string) (bool, patternmatcher.MatchInfo, error) {
		if d == "." {
			return false, patternmatcher.MatchInfo{}, nil
		}
		if info, ok := infos[d]; ok {
			return dropped[d], info, nil
		}
		pex, pinfo, err := matchDir(path.Dir(d))
		if err != nil {
			return false, pinfo, err
		}
		ex, info, err := pm.MatchesUsingParentResults(d, pinfo)
		if err != nil {
			return false, info, err
		}
		// An excluded directory is only entered when some pattern is an exception.
		ex = ex || (pex && !pm.Exclusions())
		infos[d], dropped[d] = info, ex
		return ex, info, nil
	}
	out := make([]Stored, 0, len(m.Entries))
	have := make(map[string]bool, len(m.Entries))
	for _, e := range m.Entries {
		if pm != nil {
			pex, pinfo, err := matchDir(path.Dir(e.Path))
			if err != nil {
				return nil, err
			}
			if pex && !pm.Exclusions() {
				continue
			}
			ex, info, err := pm.MatchesUsingParentResults(e.Path, pinfo)
			if err != nil {
				return nil, err
			}
			if e.Type() == syscall.S_IFDIR {
				infos[e.Path], dropped[e.Path] = info, ex
			}
			if ex {
				continue
			}
		}
		if have[e.Path] {
			return nil, fmt.Errorf("%s is listed after what is in it", e.Path)
		}
		var parents []string
		for d := path.Dir(e.Path); d != "." && !have[d]; d = path.Dir(d) {
			parents = append(parents, d)
		}
		for i := len(parents) - 1; i >= 0; i-- {
			have[parents[i]] = true
			out = append(out, Stored{Entry: Entry{Path: parents[i], Mode: syscall.S_IFDIR | 0o755}, Implicit: true})
		}
		have[e.Path] = true
		racy := e.Type() == syscall.S_IFREG && max(e.Mtime, e.Ctime) >= m.ScanStart-RacyWindow
		out = append(out, Stored{Entry: e, Racy: racy})
	}
	return out, nil
}

// Diff compares the tree the daemon holds (old, by path) with a new manifest and returns the paths to
// fetch (new, changed, or racy regular files, and new or changed directories and symlinks) and the
// paths to delete (in old, not in new), deepest first. Implicit directories are never fetched: they
// come into being with what is in them. One that the old tree holds as something else (a symlink, a
// file) is deleted first, so nothing is ever resolved through what used to be there.
func Diff(old map[string]Stored, entries []Stored) (need, del []string) {
	inNew := make(map[string]bool, len(entries))
	for _, e := range entries {
		inNew[e.Path] = true
		if e.Implicit {
			if o, ok := old[e.Path]; ok && o.Type() != syscall.S_IFDIR {
				del = append(del, e.Path)
			}
			continue
		}
		o, ok := old[e.Path]
		if !ok || o.Implicit || o.Entry != e.Entry || (o.Racy && e.Type() == syscall.S_IFREG) {
			need = append(need, e.Path)
		}
	}
	for p := range old {
		if !inNew[p] {
			del = append(del, p)
		}
	}
	// Deepest first, so a directory is emptied before it goes.
	slices.SortFunc(del, func(a, b string) int {
		if da, db := strings.Count(a, "/"), strings.Count(b, "/"); da != db {
			return db - da
		}
		return strings.Compare(a, b)
	})
	return need, del
}
