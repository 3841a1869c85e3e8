package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
)

// copySpec is a COPY or ADD after expansion.
type copySpec struct {
	cmd   string // "COPY" or "ADD"
	sd    instructions.SourcesAndDest
	from  string
	chown string
	chmod string
	text  string
	add   bool // ADD: local tars are unpacked
	// exclude (--exclude) leaves out sources matching these patterns.
	exclude []string
	// checksum (ADD --checksum=sha256:...) is what a downloaded file must digest to.
	checksum string
}

// copyStep writes a layer holding the sources at the destination. The layer goes to a temporary file
// first, because the step's cache key needs the digest of what it copies.
func (b *builder) copyStep(ctx context.Context, st *stage, spec copySpec, stageIndex int) error {
	for _, src := range spec.sd.SourcePaths {
		switch {
		case isHTTPURL(src) && spec.cmd == "COPY":
			return errdefs.InvalidParameter(fmt.Errorf("source can't be a URL for COPY"))
		case isHTTPURL(src) && !IsGitURL(src):
		case strings.Contains(src, "://") || strings.HasPrefix(src, "git@"):
			return errdefs.NotImplemented(fmt.Errorf("%s from %s is not supported yet", spec.cmd, src))
		}
	}
	if spec.checksum != "" && (len(spec.sd.SourcePaths) != 1 || !isHTTPURL(spec.sd.SourcePaths[0])) {
		return errdefs.InvalidParameter(errors.New("checksum can't be specified for non-HTTP(S) sources"))
	}
	src, release, err := b.copySource(ctx, spec, stageIndex)
	if err != nil {
		return err
	}
	defer release()

	var parent *os.Root
	if st.imageID != "" {
		dir, rel, err := b.svc.cfg.Images.Mount(ctx, st.imageID)
		if err != nil {
			return err
		}
		defer rel()
		if parent, err = os.OpenRoot(dir); err != nil {
			return errdefs.System(err)
		}
		defer parent.Close()
	}
	var exclude *patternmatcher.PatternMatcher
	if len(spec.exclude) > 0 {
		if exclude, err = patternmatcher.New(spec.exclude); err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("invalid --exclude: %w", err))
		}
	}
	uid, gid, err := resolveChown(parent, spec.chown)
	if err != nil {
		return err
	}
	var mode *fs.FileMode
	if spec.chmod != "" {
		n, err := strconv.ParseUint(spec.chmod, 8, 32)
		if err != nil || n > 0o7777 {
			return errdefs.InvalidParameter(fmt.Errorf("invalid chmod parameter %q: must be an octal mode", spec.chmod))
		}
		m := fs.FileMode(n)
		mode = &m
	}

	var known func(string, fs.FileInfo) (string, bool)
	if spec.from == "" {
		known = b.bctx.known
	}
	newWriter := func(w io.Writer) *layerWriter {
		return &layerWriter{
			tw: tar.NewWriter(w), sum: sha256.New(), epoch: st.epoch, parent: parent,
			uid: uid, gid: gid, chown: spec.chown != "", mode: mode, seen: map[string]bool{}, exclude: exclude,
			tmpDir: b.svc.cfg.Root, known: known,
		}
	}
	// Local sources are digested first without writing the layer anywhere: a cache hit, the common
	// case of a rebuild, then costs one read of the sources. A URL is fetched once, so ADD of one
	// writes the layer in the same pass.
	twoPass := true
	for _, p := range spec.sd.SourcePaths {
		twoPass = twoPass && !isHTTPURL(p)
	}
	var tmp *os.File
	lw := newWriter(io.Discard)
	lw.hashOnly = true
	if !twoPass {
		lw.hashOnly = false
		if tmp, err = os.CreateTemp(b.svc.cfg.Root, "layer-*"); err != nil {
			return errdefs.System(err)
		}
		defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
		lw = newWriter(tmp)
	}
	if err := lw.copyAll(ctx, st, spec, src); err != nil {
		return err
	}
	if err := lw.closeTar(); err != nil {
		return errdefs.System(err)
	}
	digest := hex.EncodeToString(lw.sum.Sum(nil))
	kind := "file"
	if lw.dirs > 0 || lw.files != 1 {
		kind = "dir"
	}
	createdBy := fmt.Sprintf("%s #(nop) %s %s:%s in %s ", strings.Join(st.shell(), " "), spec.cmd, kind, digest, lw.dest)
	key := cacheKey(st.imageID, "copy", createdBy, st.config, spec.text)
	return b.cachedStep(ctx, st, key, createdBy, func() (string, error) {
		if twoPass {
			if tmp, err = os.CreateTemp(b.svc.cfg.Root, "layer-*"); err != nil {
				return "", errdefs.System(err)
			}
			defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
			lw := newWriter(tmp)
			if err := lw.copyAll(ctx, st, spec, src); err != nil {
				return "", err
			}
			if err := lw.tw.Close(); err != nil {
				return "", errdefs.System(err)
			}
			if again := hex.EncodeToString(lw.sum.Sum(nil)); again != digest {
				return "", errdefs.Conflict(fmt.Errorf("%s sources changed while the step ran", spec.cmd))
			}
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return "", errdefs.System(err)
		}
		return b.svc.cfg.Images.WriteChild(ctx, Child{Parent: st.imageID, Layer: bufio.NewReader(tmp), Config: st.config, CreatedBy: createdBy, Created: st.epoch})
	})
}

// copySource opens what the step copies from: the context, or --from's stage or image.
func (b *builder) copySource(ctx context.Context, spec copySpec, stageIndex int) (*os.Root, func(), error) {
	if spec.from == "" {
		local := 0
		for _, p := range spec.sd.SourcePaths {
			if !isHTTPURL(p) {
				local++
			}
		}
		if b.bctx.root == nil && local == 0 {
			return nil, func() {}, nil // only heredoc and URL sources
		}
		if b.bctx.root == nil {
			return nil, nil, errdefs.InvalidParameter(fmt.Errorf("%s failed: this build has no context (the Dockerfile came alone on stdin)", spec.cmd))
		}
		return b.bctx.root, func() {}, nil
	}
	var id string
	if j, ok := b.stageRef(spec.from, stageIndex); ok {
		id = b.results[j].imageID
	} else if _, isStage := instructions.HasStage(b.stages, spec.from); isStage {
		return nil, nil, errdefs.InvalidParameter(fmt.Errorf("COPY --from=%s refers to a later stage", spec.from))
	} else {
		img, err := b.svc.cfg.Images.Get(ctx, spec.from)
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid from flag value %s: %w", spec.from, err))
			}
			return nil, nil, err
		}
		id = img.ID
	}
	if id == "" {
		dir, err := os.MkdirTemp(b.svc.cfg.Root, "context-empty-")
		if err != nil {
			return nil, nil, errdefs.System(err)
		}
		r, err := os.OpenRoot(dir)
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, errdefs.System(err)
		}
		return r, func() { r.Close(); os.RemoveAll(dir) }, nil
	}
	dir, release, err := b.svc.cfg.Images.Mount(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		release()
		return nil, nil, errdefs.System(err)
	}
	return r, func() { r.Close(); release() }, nil
}

// layerWriter writes a COPY layer and digests its content (not its mtimes) as it goes.
type layerWriter struct {
	tw     *tar.Writer
	sum    hash.Hash
	epoch  time.Time
	parent *os.Root // the image copied onto, for existing directories' metadata; nil for scratch
	uid    int
	gid    int
	chown  bool
	mode   *fs.FileMode
	seen   map[string]bool
	tmpDir string
	// exclude matches source paths (relative to the source root) to leave out.
	exclude *patternmatcher.PatternMatcher
	dest    string
	// hashOnly digests without writing a tar (the first pass of a local COPY); known then gives the
	// content digest of a source file the synced context already has, so it is not read at all.
	hashOnly bool
	known    func(p string, fi fs.FileInfo) (string, bool)
	files    int
	dirs     int
}

func (lw *layerWriter) copyAll(ctx context.Context, st *stage, spec copySpec, src *os.Root) error {
	dest := spec.sd.DestPath
	if dest == "" {
		return errdefs.InvalidParameter(fmt.Errorf("%s requires at least two arguments", spec.cmd))
	}
	destDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		dest = path.Join("/", st.config.WorkingDir, dest)
	}
	dest = path.Clean(dest)
	lw.dest = dest
	// Follow the image's symlinks on the way (a /bin that links to usr/bin), as Docker does: a directory
	// written where the image has a symlink would hide what the link points to.
	dest = resolveIn(lw.parent, dest)
	var sources []string
	var urls []string
	for _, p := range spec.sd.SourcePaths {
		if isHTTPURL(p) {
			urls = append(urls, p)
			continue
		}
		matches, err := expandSource(src, p)
		if err != nil {
			return fmt.Errorf("%s failed: %w", spec.cmd, err)
		}
		for _, m := range matches {
			if !lw.excluded(m) && !lw.excluded(path.Base(m)) {
				sources = append(sources, m)
			}
		}
	}
	if len(sources)+len(urls)+len(spec.sd.SourceContents) > 1 {
		destDir = true
	}
	if !destDir && lw.parent != nil {
		if fi, err := lw.parent.Stat(strings.TrimPrefix(dest, "/")); err == nil && fi.IsDir() {
			destDir = true
		}
	}
	for _, u := range urls {
		if err := lw.download(ctx, u, dest, destDir, spec.checksum); err != nil {
			return err
		}
		lw.files++
	}
	for _, sc := range spec.sd.SourceContents {
		target := dest
		if destDir {
			target = path.Join(dest, sc.Path)
		}
		if err := lw.parents(target); err != nil {
			return err
		}
		data := []byte(sc.Data)
		hdr := &tar.Header{Name: rel(target), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: lw.epoch}
		if err := lw.write(hdr, bytes.NewReader(data)); err != nil {
			return err
		}
		lw.files++
	}
	for _, s := range sources {
		fi, err := src.Stat(s)
		if err != nil {
			return errdefs.InvalidParameter(fmt.Errorf("%s failed: forbidden path outside the build context: %s", spec.cmd, s))
		}
		if fi.IsDir() {
			lw.dirs++
			if err := lw.parents(dest + "/"); err != nil {
				return err
			}
			if err := lw.dir(dest, fi, true); err != nil {
				return err
			}
			if err := lw.tree(ctx, src, s, s, dest); err != nil {
				return err
			}
			continue
		}
		if spec.add {
			if ok, err := lw.untar(ctx, src, s, dest); err != nil || ok {
				lw.dirs++
				return err
			}
		}
		target := dest
		if destDir {
			target = path.Join(dest, path.Base(s))
		}
		if err := lw.parents(target); err != nil {
			return err
		}
		if err := lw.file(src, s, target, fi); err != nil {
			return err
		}
		lw.files++
	}
	return nil
}

// expandSource resolves one source: a path or a glob, relative to the source root.
func expandSource(src *os.Root, p string) ([]string, error) {
	clean := path.Clean(strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(p)), "/"))
	if rp := path.Clean(filepath.ToSlash(p)); rp == ".." || strings.HasPrefix(rp, "../") {
		return nil, errdefs.InvalidParameter(fmt.Errorf("forbidden path outside the build context: %s ()", p))
	}
	if clean == "" {
		clean = "."
	}
	if !strings.ContainsAny(clean, "*?[") {
		if _, err := src.Lstat(clean); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("file not found in build context or excluded by .dockerignore: stat %s: file does not exist", p))
		}
		return []string{clean}, nil
	}
	matches, err := fs.Glob(src.FS(), clean)
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	if len(matches) == 0 {
		return nil, errdefs.InvalidParameter(errors.New("no source files were specified"))
	}
	return matches, nil
}

func rel(p string) string { return strings.TrimPrefix(path.Clean(p), "/") }

// parents writes the directories above target (and target itself when it ends in "/"): existing ones
// with the image's metadata, missing ones as 0755, so the layer never changes a directory it only
// passes through.
func (lw *layerWriter) parents(target string) error {
	dir := path.Dir(path.Clean(target))
	if strings.HasSuffix(target, "/") {
		dir = path.Clean(target)
	}
	if dir == "/" || dir == "." {
		return nil
	}
	parts := strings.Split(rel(dir), "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if lw.seen[p] {
			continue
		}
		// New directories belong to --chown's user, as Docker makes every new file and directory.
		hdr := &tar.Header{Name: p + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: lw.epoch, Uid: lw.uid, Gid: lw.gid}
		if lw.parent != nil {
			if fi, err := lw.parent.Lstat(p); err == nil {
				if fi.Mode()&fs.ModeSymlink != 0 {
					// Leave a symlinked directory alone; the entries below go through it on apply.
					lw.seen[p] = true
					continue
				}
				if fi.IsDir() {
					if h, err := tar.FileInfoHeader(fi, ""); err == nil {
						hdr.Uid, hdr.Gid = h.Uid, h.Gid
					}
					hdr.Mode = unixMode(fi.Mode())
					hdr.ModTime = clamp(fi.ModTime(), lw.epoch)
				}
			}
		}
		if err := lw.write(hdr, nil); err != nil {
			return err
		}
	}
	return nil
}

// tree copies the contents of directory s (in src) into dest, in lexical order.
// top is the directory the step copies, which --exclude patterns are relative to (as in BuildKit).
func (lw *layerWriter) tree(ctx context.Context, src *os.Root, top, s, dest string) error {
	f, err := src.Open(s)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		sp, dp := path.Join(s, n), path.Join(dest, n)
		if lw.excluded(strings.TrimPrefix(sp, top+"/")) {
			continue
		}
		fi, err := src.Lstat(sp)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		if fi.IsDir() {
			if err := lw.dir(dp, fi, false); err != nil {
				return err
			}
			if err := lw.tree(ctx, src, top, sp, dp); err != nil {
				return err
			}
			continue
		}
		if err := lw.file(src, sp, dp, fi); err != nil {
			return err
		}
	}
	return nil
}

func (lw *layerWriter) excluded(p string) bool {
	if lw.exclude == nil {
		return false
	}
	ok, _ := lw.exclude.MatchesOrParentMatches(p)
	return ok
}

func (lw *layerWriter) dir(dest string, fi fs.FileInfo, top bool) error {
	name := rel(dest)
	if name == "" || name == "." {
		return nil
	}
	if top && lw.seen[name] {
		return nil // already written for an earlier source of this step
	}
	if top && lw.parent != nil {
		// Copying into an existing directory keeps that directory as it is.
		if pfi, err := lw.parent.Lstat(name); err == nil && pfi.IsDir() {
			return nil
		}
	}
	hdr := &tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: lw.modeOf(fi), ModTime: clamp(fi.ModTime(), lw.epoch)}
	hdr.Uid, hdr.Gid = lw.uid, lw.gid
	delete(lw.seen, name)
	return lw.write(hdr, nil)
}

// file copies one non-directory: a regular file's bytes, a symlink as a symlink (never followed, so
// it cannot reach outside the source), nothing for sockets and devices.
func (lw *layerWriter) file(src *os.Root, s, dest string, fi fs.FileInfo) error {
	hdr := &tar.Header{Name: rel(dest), Mode: lw.modeOf(fi), ModTime: clamp(fi.ModTime(), lw.epoch), Uid: lw.uid, Gid: lw.gid}
	switch {
	case fi.Mode().IsRegular():
		hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
		if lw.hashOnly && lw.known != nil {
			if d, ok := lw.known(s, fi); ok {
				return lw.writeDigest(hdr, d)
			}
		}
		f, err := src.Open(s)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		defer f.Close()
		return lw.write(hdr, io.LimitReader(f, fi.Size()))
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := src.Readlink(s)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		return lw.write(hdr, nil)
	}
	return nil
}

func (lw *layerWriter) modeOf(fi fs.FileInfo) int64 {
	if lw.mode != nil {
		return int64(*lw.mode)
	}
	return unixMode(fi.Mode())
}

func unixMode(m fs.FileMode) int64 {
	out := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		out |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		out |= 0o1000
	}
	return out
}

// write adds one entry, feeding everything but its mtime to the content digest.
func (lw *layerWriter) write(hdr *tar.Header, body io.Reader) error {
	hdr.Format = tar.FormatPAX
	name := strings.TrimSuffix(hdr.Name, "/")
	if hdr.Typeflag == tar.TypeDir {
		if lw.seen[name] {
			return nil
		}
	}
	if strings.HasPrefix(path.Base(name), ".wh.") {
		// A layer entry with this prefix is a whiteout: it would delete a file instead of adding one.
		return errdefs.InvalidParameter(fmt.Errorf("%s: names starting with .wh. are reserved for layer whiteouts", hdr.Name))
	}
	lw.seen[name] = true
	fmt.Fprintf(lw.sum, "%s\x00%c\x00%o\x00%d:%d\x00%s\x00%d\x00", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Linkname, hdr.Size)
	if !lw.hashOnly {
		if err := lw.tw.WriteHeader(hdr); err != nil {
			return errdefs.System(err)
		}
	}
	if body == nil {
		return nil
	}
	// A file's bytes count through their own digest, so a synced context's stored digest of a file
	// stands in for reading it (writeDigest) and gives the same step digest.
	fsum := sha256.New()
	w := io.Writer(fsum)
	if !lw.hashOnly {
		w = io.MultiWriter(lw.tw, fsum)
	}
	n, err := io.Copy(w, body)
	if err == nil && n != hdr.Size {
		err = fmt.Errorf("%s changed while it was copied", hdr.Name)
	}
	if err != nil {
		return errdefs.System(err)
	}
	fmt.Fprintf(lw.sum, "%x\x00", fsum.Sum(nil))
	return nil
}

// writeDigest counts a regular file whose content digest is known without reading it (hashOnly).
func (lw *layerWriter) writeDigest(hdr *tar.Header, digest string) error {
	hdr.Format = tar.FormatPAX
	if strings.HasPrefix(path.Base(hdr.Name), ".wh.") {
		return errdefs.InvalidParameter(fmt.Errorf("%s: names starting with .wh. are reserved for layer whiteouts", hdr.Name))
	}
	lw.seen[hdr.Name] = true
	fmt.Fprintf(lw.sum, "%s\x00%c\x00%o\x00%d:%d\x00%s\x00%d\x00%s\x00", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Linkname, hdr.Size, digest)
	return nil
}

// closeTar ends the layer tar (nothing to end when only hashing).
func (lw *layerWriter) closeTar() error {
	if lw.hashOnly {
		return nil
	}
	return lw.tw.Close()
}

// untar unpacks s into dest when it is a (maybe compressed) tar, as ADD does with local archives. It
// reports false, having written nothing, for any other file.
func (lw *layerWriter) untar(ctx context.Context, src *os.Root, s, dest string) (bool, error) {
	f, err := src.Open(s)
	if err != nil {
		return false, errdefs.InvalidParameter(err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return false, nil
		}
		r = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	}
	tbr := bufio.NewReaderSize(r, 1024)
	head, _ := tbr.Peek(512)
	if len(head) < 512 {
		return false, nil
	}
	if _, err := tar.NewReader(bytes.NewReader(head)).Next(); err != nil {
		return false, nil
	}
	if err := lw.parents(dest + "/"); err != nil {
		return true, err
	}
	tr := tar.NewReader(tbr)
	for {
		if err := ctx.Err(); err != nil {
			return true, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return true, errdefs.InvalidParameter(fmt.Errorf("unpacking %s: %w", s, err))
		}
		name := rel(path.Join(dest, path.Clean("/"+hdr.Name)))
		if name == "" {
			continue
		}
		out := &tar.Header{Name: name, Typeflag: hdr.Typeflag, Mode: hdr.Mode & 0o7777, Uid: hdr.Uid, Gid: hdr.Gid,
			ModTime: clamp(hdr.ModTime, lw.epoch), Linkname: hdr.Linkname, Size: hdr.Size, Devmajor: hdr.Devmajor, Devminor: hdr.Devminor}
		var body io.Reader
		switch hdr.Typeflag {
		case tar.TypeDir:
			out.Name += "/"
			out.Size = 0
			delete(lw.seen, name)
		case tar.TypeReg, tar.TypeRegA:
			out.Typeflag = tar.TypeReg
			body = tr
		case tar.TypeLink:
			out.Linkname = rel(path.Join(dest, path.Clean("/"+hdr.Linkname)))
			out.Size = 0
		case tar.TypeSymlink:
			out.Size = 0
		default:
			continue // devices, fifos and PAX oddities have no place in an ADDed tree
		}
		if err := lw.write(out, body); err != nil {
			return true, err
		}
	}
}

func clamp(t, epoch time.Time) time.Time {
	t = t.Truncate(time.Second)
	if t.After(epoch) {
		return epoch
	}
	return t
}

func isHTTPURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// download adds a remote file as ADD does: mode 0600, the mtime from Last-Modified, never unpacked.
// The body goes through a temporary file because the tar header needs its size first.
func (lw *layerWriter) download(ctx context.Context, url, dest string, destDir bool, checksum string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return errdefs.Unavailable(fmt.Errorf("ADD failed: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errdefs.InvalidParameter(fmt.Errorf("ADD failed: %s: %s", url, resp.Status))
	}
	tmp, err := os.CreateTemp(lw.tmpDir, "download-*")
	if err != nil {
		return errdefs.System(err)
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), resp.Body)
	if err != nil {
		return errdefs.Unavailable(fmt.Errorf("ADD failed: reading %s: %w", url, err))
	}
	if checksum != "" {
		if got := "sha256:" + hex.EncodeToString(sum.Sum(nil)); got != checksum {
			return errdefs.InvalidParameter(fmt.Errorf("ADD failed: digest mismatch for %s: %s, expected %s", url, got, checksum))
		}
	}
	target := dest
	if destDir {
		name := path.Base(req.URL.Path)
		if name == "/" || name == "." || name == "" {
			return errdefs.InvalidParameter(fmt.Errorf("cannot determine a file name for %s; give the destination as a file path", url))
		}
		target = path.Join(dest, name)
	}
	if err := lw.parents(target); err != nil {
		return err
	}
	mtime := time.Unix(0, 0)
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mtime = lm
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return errdefs.System(err)
	}
	mode := int64(0o600)
	if lw.mode != nil {
		mode = int64(*lw.mode)
	}
	hdr := &tar.Header{Name: rel(target), Typeflag: tar.TypeReg, Mode: mode, Size: n, ModTime: clamp(mtime, lw.epoch), Uid: lw.uid, Gid: lw.gid}
	return lw.write(hdr, tmp)
}

// resolveIn resolves the symlinks of p (absolute, clean) inside the tree root, the way the kernel would
// with root as "/": ".." never climbs above it and absolute targets start from it. Missing components
// end the resolution; the rest of p is kept as it is.
func resolveIn(root *os.Root, p string) string {
	if root == nil {
		return p
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0 && hops < 40; {
		next := path.Join(cur, parts[0])
		fi, err := root.Lstat(strings.TrimPrefix(next, "/"))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			cur, parts = next, parts[1:]
			if err != nil {
				break
			}
			continue
		}
		target, err := root.Readlink(strings.TrimPrefix(next, "/"))
		if err != nil {
			break
		}
		hops++
		if !path.IsAbs(target) {
			target = path.Join(cur, target)
		}
		parts = append(strings.Split(strings.TrimPrefix(path.Clean(target), "/"), "/"), parts[1:]...)
		cur = "/"
	}
	return path.Clean(path.Join(append([]string{cur}, parts...)...))
}
