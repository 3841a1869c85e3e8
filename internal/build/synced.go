package build

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/ctxsync"
	"github.com/berth-dev/berth/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Synced contexts (see package ctxsync): the builder keeps, per context id, the tree a client last sent
// under <Root>/synced/<id>/<generation>/, with each regular file's content digest. A build on a synced
// context reads that tree, and COPY takes the digests of the files it copies from there instead of
// reading them.
//
// A generation's files are never written in place: a changed file is a new inode (archive.Apply
// replaces, never rewrites). A sync applies its changes to the current generation in place when
// nothing else uses it; while a build or another sync holds it, the changes go to a new generation
// made of hard links to the old one, so every build sees its own tree from start to end. Generations
// nothing uses, other than a context's current one, are removed. The store forgets everything when
// berthd restarts.

const (
	maxSyncedContexts = 16               // contexts kept; the least recently used idle one goes first
	syncSessionTTL    = 10 * time.Minute // a sync whose build never came
)

var syncID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

type syncStore struct {
	root string

	mu       sync.Mutex // guards everything below and every generation's refs
	ctxs     map[string]*syncedCtx
	sessions map[string]*syncSession
	seq      int
}

type syncedCtx struct {
	id   string
	dir  string
	lock sync.Mutex // held while a sync reads the current generation or a build changes it
	cur  *generation
	used time.Time
	// active counts the sessions and builds using this context's trees; only an inactive context is
	// evicted or pruned. Guarded by syncStore.mu.
	active int
}

type generation struct {
	dir     string
	entries map[string]ctxsync.Stored
	files   map[string]fileDigest // regular files by path
	refs    int
	gone    bool
}

// fileDigest is a regular file's content digest and the stat data of the inode it was taken from.
type fileDigest struct {
	digest string
	ino    uint64
	size   int64
	mtime  int64
}

type syncSession struct {
	ctx        *syncedCtx
	base       *generation // nil for the first sync of a context
	entries    []ctxsync.Stored
	need       map[string]bool
	del        []string
	dockerfile []byte
	expires    time.Time
}

// newSyncStore starts empty: what a previous berthd kept is not trusted (it was not watching). The old
// trees are moved aside and removed in the background, so a large one does not hold up startup.
func newSyncStore(root string) *syncStore {
	old := root + ".old-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := os.Rename(root, old); err != nil {
		os.RemoveAll(root)
	}
	if leftovers, _ := filepath.Glob(root + ".old-*"); len(leftovers) > 0 {
		go func() {
			for _, p := range leftovers {
				os.RemoveAll(p)
			}
		}()
	}
	return &syncStore{root: root, ctxs: map[string]*syncedCtx{}, sessions: map[string]*syncSession{}}
}

// SyncContext answers a context manifest (POST /berth/build/context/{id}/sync) with the paths the
// client must send, and opens a session for the build that follows.
func (s *Service) SyncContext(ctx context.Context, id string, m ctxsync.Manifest) (ctxsync.Answer, error) {
	if m.Version != ctxsync.Version {
		return ctxsync.Answer{}, errdefs.InvalidParameter(fmt.Errorf("unsupported context sync version %d (this daemon speaks %d)", m.Version, ctxsync.Version))
	}
	if !syncID.MatchString(id) {
		return ctxsync.Answer{}, errdefs.InvalidParameter(fmt.Errorf("invalid build context id %q", id))
	}
	if len(m.Dockerfile) > maxDockerfile {
		return ctxsync.Answer{}, errdefs.InvalidParameter(errors.New("the Dockerfile is too large"))
	}
	entries, err := ctxsync.Prepare(m)
	if err != nil {
		return ctxsync.Answer{}, errdefs.InvalidParameter(err)
	}
	st := s.synced
	st.mu.Lock()
	st.expire(time.Now())
	c := st.ctxs[id]
	if c == nil {
		c = &syncedCtx{id: id, dir: filepath.Join(st.root, id)}
		st.ctxs[id] = c
	}
	c.used = time.Now()
	c.active++ // until the build ends or the session expires
	st.mu.Unlock()

	c.lock.Lock()
	st.mu.Lock()
	base := c.cur
	if base != nil {
		base.refs++
	}
	st.mu.Unlock()
	var old map[string]ctxsync.Stored
	if base != nil {
		old = base.entries
	}
	need, del := ctxsync.Diff(old, entries)
	c.lock.Unlock()

	sess := &syncSession{ctx: c, base: base, entries: entries, need: make(map[string]bool, len(need)), del: del,
		dockerfile: m.Dockerfile, expires: time.Now().Add(syncSessionTTL)}
	for _, p := range need {
		sess.need[p] = true
	}
	token := rand.Text()
	st.mu.Lock()
	st.sessions[token] = sess
	st.evict()
	st.mu.Unlock()
	return ctxsync.Answer{Version: ctxsync.Version, Session: token, Need: need}, nil
}

// expire drops sessions whose build never came. st.mu is held.
func (st *syncStore) expire(now time.Time) {
	for k, sess := range st.sessions {
		if now.After(sess.expires) {
			delete(st.sessions, k)
			st.releaseLocked(sess.ctx, sess.base)
			sess.ctx.active--
		}
	}
}

// evict removes the least recently used idle contexts beyond maxSyncedContexts. st.mu is held.
func (st *syncStore) evict() {
	if len(st.ctxs) <= maxSyncedContexts {
		return
	}
	var idle []*syncedCtx
	for _, c := range st.ctxs {
		if c.active == 0 {
			idle = append(idle, c)
		}
	}
	sort.Slice(idle, func(i, j int) bool { return idle[i].used.Before(idle[j].used) })
	for _, c := range idle {
		if len(st.ctxs) <= maxSyncedContexts {
			break
		}
		st.dropLocked(c)
	}
}

// dropLocked forgets an idle context and removes its trees; it returns the bytes its files took.
func (st *syncStore) dropLocked(c *syncedCtx) int64 {
	delete(st.ctxs, c.id)
	var size int64
	if c.cur != nil {
		for _, f := range c.cur.files {
			size += f.size
		}
		c.cur.gone = true
	}
	os.RemoveAll(c.dir)
	return size
}

// prune removes every synced context no build or sync is using (and, when until is set, last used
// before it) and reports them and their size.
func (st *syncStore) prune(until time.Time) (ids []string, reclaimed int64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.expire(time.Now())
	for _, c := range st.ctxs {
		if c.active > 0 || (!until.IsZero() && !c.used.Before(until)) {
			continue
		}
		reclaimed += st.dropLocked(c)
		ids = append(ids, "context:"+c.id)
	}
	sort.Strings(ids)
	return ids, reclaimed
}

// release drops a reference to g; an unused generation that is no longer current is removed.
func (st *syncStore) release(c *syncedCtx, g *generation) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.releaseLocked(c, g)
}

func (st *syncStore) releaseLocked(c *syncedCtx, g *generation) {
	if g == nil {
		return
	}
	g.refs--
	if g.refs == 0 && g != c.cur && !g.gone {
		g.gone = true
		go os.RemoveAll(g.dir)
	}
}

// openSynced takes the session's tree, applies the tar of needed paths src to it and returns the
// build's context. Close releases the tree.
func (s *Service) openSynced(ctx context.Context, token string, src io.Reader) (*buildContext, error) {
	st := s.synced
	st.mu.Lock()
	sess := st.sessions[token]
	delete(st.sessions, token)
	st.mu.Unlock()
	if sess == nil {
		return nil, errdefs.InvalidParameter(errors.New("unknown or expired build context session; run the build again"))
	}
	c := sess.ctx
	g, err := st.apply(ctx, sess, src)
	if err != nil {
		st.mu.Lock()
		c.active--
		st.mu.Unlock()
		return nil, err
	}
	release := func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		st.releaseLocked(c, g)
		c.active--
	}
	bc := &buildContext{release: release, dockerfile: sess.dockerfile, known: g.known}
	// The top directory's mtime is the time the context arrived, as an unpacked tar's is.
	now := time.Now()
	os.Chtimes(g.dir, now, now)
	if bc.root, err = os.OpenRoot(g.dir); err != nil {
		bc.Close()
		return nil, errdefs.System(err)
	}
	bc.rootDir = g.dir
	return bc, nil
}

// apply makes the session's tree: its base when nothing changed, the base changed in place when
// nothing else holds it, or a new generation of hard links to the base with the changes. It returns
// the generation with a reference held for the build (the session's own reference passes to it).
func (st *syncStore) apply(ctx context.Context, sess *syncSession, src io.Reader) (*generation, error) {
	c := sess.ctx
	c.lock.Lock()
	defer c.lock.Unlock()
	base := sess.base
	if len(sess.need) == 0 && len(sess.del) == 0 && base != nil {
		if err := drainTar(src); err != nil {
			st.release(c, base)
			return nil, err
		}
		return base, nil
	}
	st.mu.Lock()
	inPlace := base != nil && base == c.cur && base.refs == 1
	if inPlace {
		// Nobody can take a new reference while c.lock is held; the tree may change until it is done.
		base.refs++ // the build's
		c.cur = nil
	}
	st.seq++
	seq := st.seq
	st.mu.Unlock()

	g := base
	if !inPlace {
		g = &generation{dir: filepath.Join(c.dir, strconv.Itoa(seq)), refs: 1}
		if err := os.MkdirAll(c.dir, 0o700); err != nil {
			st.release(c, base)
			return nil, errdefs.System(err)
		}
		if err := os.Mkdir(g.dir, 0o700); err != nil {
			st.release(c, base)
			return nil, errdefs.System(err)
		}
		var err error
		if base != nil {
			err = linkTree(base, g.dir, sess)
		}
		st.release(c, base)
		if err != nil {
			os.RemoveAll(g.dir)
			return nil, errdefs.System(fmt.Errorf("copying the synced context: %w", err))
		}
	} else {
		st.release(c, base) // the session's; the build's stays
	}
	files, err := applyChanges(ctx, g, sess, src)
	if err != nil {
		// The tree is now neither old nor new: it goes once the build lets go of it.
		st.mu.Lock()
		g.refs--
		if !g.gone {
			g.gone = true
			os.RemoveAll(g.dir)
		}
		st.mu.Unlock()
		return nil, err
	}
	entries := make(map[string]ctxsync.Stored, len(sess.entries))
	for _, e := range sess.entries {
		entries[e.Path] = e
	}
	g.entries, g.files = entries, files
	st.mu.Lock()
	// The current generation needs no reference to stay; the one it replaces goes when unused.
	old := c.cur
	c.cur = g
	if old != nil && old != g && old.refs == 0 && !old.gone {
		old.gone = true
		go os.RemoveAll(old.dir)
	}
	st.mu.Unlock()
	return g, nil
}

// linkTree fills dir with the base generation's tree minus what the session deletes or replaces:
// directories made anew, everything else hard-linked.
func linkTree(base *generation, dir string, sess *syncSession) error {
	paths := make([]string, 0, len(base.entries))
	for p := range base.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths) // a parent sorts before what is in it
	skip := map[string]bool{}
	for _, p := range sess.del {
		skip[p] = true
	}
	for _, p := range paths {
		if skip[p] || skip[path.Dir(p)] {
			skip[p] = true
			continue
		}
		e := base.entries[p]
		to := filepath.Join(dir, p)
		if e.Type() == syscall.S_IFDIR {
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
			continue
		}
		if sess.need[p] {
			continue
		}
		if err := linkBeneath(base.dir, p, to); err != nil {
			return err
		}
	}
	// Directory metadata last, deepest first: linking changed their mtimes.
	for i := len(paths) - 1; i >= 0; i-- {
		p := paths[i]
		e := base.entries[p]
		if skip[p] || e.Type() != syscall.S_IFDIR {
			continue
		}
		to := filepath.Join(dir, p)
		if err := os.Lchown(to, int(e.UID), int(e.GID)); err != nil {
			return err
		}
		if err := syscall.Chmod(to, e.Mode&0o7777); err != nil {
			return err
		}
		if fi, err := os.Lstat(filepath.Join(base.dir, p)); err == nil {
			os.Chtimes(to, fi.ModTime(), fi.ModTime())
		}
	}
	return nil
}

// applyChanges deletes what the session drops and unpacks the needed paths from src into g.dir,
// checking that src holds exactly those, as the manifest describes them, and digesting regular files
// on the way. It returns the digests of the tree's files.
func applyChanges(ctx context.Context, g *generation, sess *syncSession, src io.Reader) (map[string]fileDigest, error) {
	root, err := os.OpenRoot(g.dir)
	if err != nil {
		return nil, errdefs.System(err)
	}
	defer root.Close()
	for _, p := range sess.del {
		if err := root.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.System(err)
		}
	}
	want := make(map[string]ctxsync.Entry, len(sess.need))
	for _, e := range sess.entries {
		if sess.need[e.Path] {
			want[e.Path] = e.Entry
		}
	}
	digests := map[string]string{}
	pr, pw := io.Pipe()
	filterErr := make(chan error, 1)
	go func() {
		err := filterTar(src, pw, want, digests)
		pw.CloseWithError(err)
		filterErr <- err
	}()
	_, aerr := archive.Apply(ctx, g.dir, pr, archive.ApplyOptions{NoDevices: true})
	pr.CloseWithError(errors.New("apply ended"))
	ferr := <-filterErr
	if ferr != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("reading the build context: %w", ferr))
	}
	if aerr != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("reading the build context: %w", aerr))
	}
	for p := range want {
		if _, ok := digests[p]; !ok {
			return nil, errdefs.InvalidParameter(fmt.Errorf("reading the build context: %s is missing from the upload", p))
		}
	}
	// Unpacking and deleting changed the mtimes of the directories around the changes; they get back
	// the client's (to the second, as a context tar carries them).
	byPath := make(map[string]ctxsync.Stored, len(sess.entries))
	for _, e := range sess.entries {
		byPath[e.Path] = e
	}
	touched := map[string]bool{}
	for _, p := range append(slices.Collect(maps.Keys(want)), sess.del...) {
		touched[path.Dir(p)] = true
	}
	for d := range touched {
		if e, ok := byPath[d]; ok && !e.Implicit && e.Type() == syscall.S_IFDIR {
			t := time.Unix(0, e.Mtime).Truncate(time.Second)
			if err := root.Chtimes(d, t, t); err != nil {
				return nil, errdefs.System(err)
			}
		}
	}
	files := make(map[string]fileDigest, len(sess.entries))
	var old map[string]fileDigest
	if sess.base != nil {
		old = sess.base.files
	}
	for _, e := range sess.entries {
		if e.Type() != syscall.S_IFREG {
			continue
		}
		if d, ok := digests[e.Path]; ok {
			fi, err := root.Lstat(e.Path)
			if err != nil {
				return nil, errdefs.System(err)
			}
			fd := fileDigest{digest: d, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				fd.ino = st.Ino
			}
			files[e.Path] = fd
		} else if fd, ok := old[e.Path]; ok {
			files[e.Path] = fd // hard-linked or left in place: the same inode
		}
	}
	return files, nil
}

// filterTar copies the entries of src that want names to w, checking each against its manifest entry
// and digesting regular files into digests. Anything else in src is an error.
func filterTar(src io.Reader, w io.Writer, want map[string]ctxsync.Entry, digests map[string]string) error {
	tr := tar.NewReader(src)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := path.Clean(hdr.Name)
		e, ok := want[name]
		if !ok {
			return fmt.Errorf("%s was not asked for", hdr.Name)
		}
		if _, dup := digests[name]; dup {
			return fmt.Errorf("%s is in the upload twice", hdr.Name)
		}
		var typ uint32
		switch hdr.Typeflag {
		case tar.TypeDir:
			typ = syscall.S_IFDIR
		case tar.TypeReg, tar.TypeRegA:
			typ = syscall.S_IFREG
		case tar.TypeSymlink:
			typ = syscall.S_IFLNK
		}
		if typ != e.Type() || (typ == syscall.S_IFREG && hdr.Size != e.Size) || (typ == syscall.S_IFLNK && hdr.Linkname != e.Link) {
			return fmt.Errorf("%s changed after it was listed; run the build again", hdr.Name)
		}
		hdr.Name = name
		if typ == syscall.S_IFDIR {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if typ != syscall.S_IFREG {
			digests[name] = ""
			continue
		}
		sum := sha256.New()
		if _, err := io.Copy(io.MultiWriter(tw, sum), tr); err != nil {
			return err
		}
		digests[name] = hex.EncodeToString(sum.Sum(nil))
	}
	return tw.Close()
}

// drainTar reads an upload that should hold nothing.
func drainTar(src io.Reader) error {
	tr := tar.NewReader(src)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("reading the build context: %w", err))
		}
		return errdefs.InvalidParameter(fmt.Errorf("reading the build context: %s was not asked for", hdr.Name))
	}
}

// known is the content digest of the regular file at p in the tree, when fi is the very inode it was
// taken from.
func (g *generation) known(p string, fi fs.FileInfo) (string, bool) {
	f, ok := g.files[p]
	if !ok || f.size != fi.Size() || f.mtime != fi.ModTime().UnixNano() {
		return "", false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Ino != f.ino {
		return "", false
	}
	return f.digest, true
}

// linkBeneath hard-links the entry rel of the tree root to to, without following any symlink on the way
// to it (nor the entry itself, if it is one): a symlink in the stored tree must never lead the link
// outside it.
func linkBeneath(root, rel, to string) error {
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(rootFd)
	dir := path.Dir(rel)
	parent := rootFd
	if dir != "." {
		parent, err = unix.Openat2(rootFd, dir, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != nil {
			return fmt.Errorf("context path %s: %w", rel, err)
		}
		defer unix.Close(parent)
	}
	return unix.Linkat(parent, path.Base(rel), unix.AT_FDCWD, to, 0)
}
