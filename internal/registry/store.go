package registry

import (
	"crypto/rand"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// store is the filesystem layout described in the package doc. Its methods return *regError for what
// a client did wrong and plain errors for I/O failures.
type store struct {
	root string

	mu      sync.Mutex
	uploads map[string]*uploadState // by repository name + "/" + upload id
}

// uploadState is what the server remembers of an upload between requests: a running sha256 so the
// common case needs no second read of the data at commit. After a restart it is rebuilt lazily and the
// digest is computed from the file instead.
type uploadState struct {
	mu   sync.Mutex
	size int64
	h256 hash.Hash // nil when unknown (restart, or an error left it behind the file)
}

func newStore(root string) (*store, error) {
	for _, d := range []string{"blobs", "repos", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}
	return &store{root: root, uploads: map[string]*uploadState{}}, nil
}

func (s *store) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", string(d.Algorithm()), d.Encoded())
}

func (s *store) repoDir(name string) string {
	return filepath.Join(s.root, "repos", filepath.FromSlash(name))
}

func (s *store) blobLink(name string, d digest.Digest) string {
	return filepath.Join(s.repoDir(name), "_blobs", string(d.Algorithm()), d.Encoded())
}

func (s *store) manifestLink(name string, d digest.Digest) string {
	return filepath.Join(s.repoDir(name), "_manifests", string(d.Algorithm()), d.Encoded())
}

func (s *store) tagPath(name, tag string) string {
	return filepath.Join(s.repoDir(name), "_tags", tag)
}

func (s *store) referrersDir(name string, subject digest.Digest) string {
	return filepath.Join(s.repoDir(name), "_referrers", string(subject.Algorithm()), subject.Encoded())
}

func (s *store) uploadPath(name, id string) string {
	return filepath.Join(s.repoDir(name), "_uploads", id)
}

// writeAtomic replaces path with data: a temp file in the same filesystem, fsynced, renamed over, and
// the directory synced, so a crash leaves the old content or the new one.
func (s *store) writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "w-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return renameInto(tmp, path)
}

// renameInto renames src to dst, making dst's directory first, and syncs that directory.
func renameInto(src, dst string) error {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// commitBlob moves a verified, fsynced file into the content store. If the blob is already there the
// file is dropped: content addressing makes both the same.
func (s *store) commitBlob(path string, d digest.Digest) error {
	dst := s.blobPath(d)
	if exists(dst) {
		return os.Remove(path)
	}
	return renameInto(path, dst)
}

// link makes a blob visible in a repository. An empty file is created whole or not at all.
func (s *store) link(name string, d digest.Digest) error {
	p := s.blobLink(name, d)
	if exists(p) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

// hasBlob tells whether name may see blob d.
func (s *store) hasBlob(name string, d digest.Digest) bool {
	return exists(s.blobLink(name, d)) && exists(s.blobPath(d))
}

// openBlob opens blob d as seen from repository name.
func (s *store) openBlob(name string, d digest.Digest) (*os.File, error) {
	if !exists(s.blobLink(name, d)) {
		return nil, errBlobUnknown(d)
	}
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errBlobUnknown(d)
	}
	return f, err
}

func errBlobUnknown(d digest.Digest) *regError {
	return errf(http.StatusNotFound, codeBlobUnknown, "blob unknown to registry").with(map[string]string{"digest": d.String()})
}

// linkedAnywhere tells whether any repository holds blob d.
func (s *store) linkedAnywhere(d digest.Digest) bool {
	if !exists(s.blobPath(d)) {
		return false
	}
	repos, err := s.repositories()
	if err != nil {
		return false
	}
	for _, name := range repos {
		if exists(s.blobLink(name, d)) {
			return true
		}
	}
	return false
}

func (s *store) unlinkBlob(name string, d digest.Digest) error {
	err := os.Remove(s.blobLink(name, d))
	if errors.Is(err, fs.ErrNotExist) {
		return errBlobUnknown(d)
	}
	return err
}

// putBlob stores a whole blob read from r and links it into name, failing with DIGEST_INVALID if the
// content does not hash to d.
func (s *store) putBlob(name string, d digest.Digest, r io.Reader) error {
	f, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "blob-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := d.Algorithm().Hash()
	if _, err := io.Copy(io.MultiWriter(f, h), r); err != nil {
		return errf(http.StatusBadRequest, codeBlobUploadInvalid, "reading blob: "+err.Error())
	}
	if got := digest.NewDigestFromEncoded(d.Algorithm(), hex.EncodeToString(h.Sum(nil))); got != d {
		return errDigestMismatch(d, got)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := s.commitBlob(f.Name(), d); err != nil {
		return err
	}
	return s.link(name, d)
}

func errDigestMismatch(want, got digest.Digest) *regError {
	return errf(http.StatusBadRequest, codeDigestInvalid, "provided digest did not match uploaded content").
		with(map[string]string{"expected": want.String(), "computed": got.String()})
}

// Uploads.

func errUploadUnknown() *regError {
	return errf(http.StatusNotFound, codeBlobUploadUnknown, "blob upload unknown to registry")
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validUploadID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func (s *store) startUpload(name string) (string, error) {
	id := newID()
	p := s.uploadPath(name, id)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	f.Close()
	s.mu.Lock()
	s.uploads[name+"/"+id] = &uploadState{h256: digest.SHA256.Hash()}
	s.mu.Unlock()
	return id, nil
}

// upload returns the state of an upload in progress, locked; the caller unlocks it.
func (s *store) upload(name, id string) (*uploadState, error) {
	if !validUploadID(id) {
		return nil, errUploadUnknown()
	}
	st, err := os.Stat(s.uploadPath(name, id))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errUploadUnknown()
		}
		return nil, err
	}
	s.mu.Lock()
	u := s.uploads[name+"/"+id]
	if u == nil {
		u = &uploadState{size: st.Size()}
		s.uploads[name+"/"+id] = u
	}
	s.mu.Unlock()
	u.mu.Lock()
	if fi, err := os.Stat(s.uploadPath(name, id)); err != nil {
		u.mu.Unlock()
		return nil, errUploadUnknown() // cancelled or committed while we waited
	} else if fi.Size() != u.size {
		u.size, u.h256 = fi.Size(), nil
	}
	return u, nil
}

func (s *store) forget(name, id string) {
	s.mu.Lock()
	delete(s.uploads, name+"/"+id)
	s.mu.Unlock()
}

// uploadSize is the number of bytes received so far.
func (s *store) uploadSize(name, id string) (int64, error) {
	u, err := s.upload(name, id)
	if err != nil {
		return 0, err
	}
	defer u.mu.Unlock()
	return u.size, nil
}

// appendUpload adds r to the upload. start, when >= 0, is where the client says the chunk begins; it
// must be the current end (chunks arrive in order), else 416. On a failed read the file is cut back so
// the upload stays consistent and the client can resume from the reported range.
func (s *store) appendUpload(name, id string, start int64, r io.Reader) (int64, error) {
	u, err := s.upload(name, id)
	if err != nil {
		return 0, err
	}
	defer u.mu.Unlock()
	return s.appendLocked(name, id, u, start, r)
}

func (s *store) appendLocked(name, id string, u *uploadState, start int64, r io.Reader) (int64, error) {
	if start >= 0 && start != u.size {
		return u.size, errf(http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid,
			fmt.Sprintf("chunk starts at %d, upload has %d bytes", start, u.size))
	}
	f, err := os.OpenFile(s.uploadPath(name, id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return u.size, err
	}
	defer f.Close()
	var saved []byte
	var w io.Writer = f
	if u.h256 != nil {
		saved, _ = u.h256.(encoding.BinaryMarshaler).MarshalBinary()
		w = io.MultiWriter(f, u.h256)
	}
	n, err := io.Copy(w, r)
	if err != nil {
		_ = f.Truncate(u.size)
		if u.h256 != nil {
			if uerr := u.h256.(encoding.BinaryUnmarshaler).UnmarshalBinary(saved); uerr != nil {
				u.h256 = nil
			}
		}
		return u.size, errf(http.StatusBadRequest, codeBlobUploadInvalid, "reading chunk: "+err.Error())
	}
	u.size += n
	return u.size, nil
}

// commitUpload appends the last chunk (possibly empty), checks the whole upload against d and moves it
// into the content store.
func (s *store) commitUpload(name, id string, d digest.Digest, start int64, r io.Reader) error {
	u, err := s.upload(name, id)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	if _, err := s.appendLocked(name, id, u, start, r); err != nil {
		return err
	}
	p := s.uploadPath(name, id)
	var got digest.Digest
	if d.Algorithm() == digest.SHA256 && u.h256 != nil {
		got = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(u.h256.Sum(nil)))
	} else {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		got, err = d.Algorithm().FromReader(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	if got != d {
		// The upload is spent either way: docker's registry also drops it, and the client restarts.
		_ = os.Remove(p)
		s.forget(name, id)
		return errDigestMismatch(d, got)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return err
	}
	if err := s.commitBlob(p, d); err != nil {
		return err
	}
	s.forget(name, id)
	return s.link(name, d)
}

func (s *store) cancelUpload(name, id string) error {
	u, err := s.upload(name, id)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	s.forget(name, id)
	return os.Remove(s.uploadPath(name, id))
}

// Manifests and tags.

func errManifestUnknown(ref string) *regError {
	return errf(http.StatusNotFound, codeManifestUnknown, "manifest unknown").with(map[string]string{"reference": ref})
}

// putManifest stores a manifest's bytes, its revision link (holding the media type), the referrers
// link for its subject, and the tag if one was given, each atomically and in that order, so a tag or
// a referrer never points at a manifest that is not there.
func (s *store) putManifest(name string, d digest.Digest, mediaType string, body []byte, tags []string, subject digest.Digest) error {
	if !exists(s.blobPath(d)) {
		if err := s.writeAtomic(s.blobPath(d), body); err != nil {
			return err
		}
	}
	if err := s.writeAtomic(s.manifestLink(name, d), []byte(mediaType)); err != nil {
		return err
	}
	if subject != "" {
		p := filepath.Join(s.referrersDir(name, subject), string(d.Algorithm())+"-"+d.Encoded())
		if err := s.writeAtomic(p, []byte(mediaType)); err != nil {
			return err
		}
	}
	for _, tag := range tags {
		if err := s.writeAtomic(s.tagPath(name, tag), []byte(d.String())); err != nil {
			return err
		}
	}
	return nil
}

// resolve turns a tag or digest into the manifest's digest and media type.
func (s *store) resolve(name, ref string) (digest.Digest, string, error) {
	d, err := digest.Parse(ref)
	if err != nil {
		b, err := os.ReadFile(s.tagPath(name, ref))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", "", errManifestUnknown(ref)
			}
			return "", "", err
		}
		if d, err = digest.Parse(strings.TrimSpace(string(b))); err != nil {
			return "", "", fmt.Errorf("tag %s: %w", ref, err)
		}
	}
	mt, err := os.ReadFile(s.manifestLink(name, d))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", errManifestUnknown(ref)
		}
		return "", "", err
	}
	return d, string(mt), nil
}

// deleteManifest removes a manifest revision, the tags that point at it and its referrers link. The
// bytes stay in blobs/ until GC.
func (s *store) deleteManifest(name string, d digest.Digest) error {
	if err := os.Remove(s.manifestLink(name, d)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errManifestUnknown(d.String())
		}
		return err
	}
	tags, _ := s.tags(name)
	for _, t := range tags {
		if b, err := os.ReadFile(s.tagPath(name, t)); err == nil && strings.TrimSpace(string(b)) == d.String() {
			_ = os.Remove(s.tagPath(name, t))
		}
	}
	if b, err := os.ReadFile(s.blobPath(d)); err == nil {
		if m, err := parseManifest(b); err == nil && m.Subject != nil {
			_ = os.Remove(filepath.Join(s.referrersDir(name, m.Subject.Digest), string(d.Algorithm())+"-"+d.Encoded()))
		}
	}
	return nil
}

func (s *store) deleteTag(name, tag string) error {
	err := os.Remove(s.tagPath(name, tag))
	if errors.Is(err, fs.ErrNotExist) {
		return errManifestUnknown(tag)
	}
	return err
}

func (s *store) repoExists(name string) bool {
	return exists(s.repoDir(name))
}

// tags lists a repository's tags in lexical order.
func (s *store) tags(name string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.repoDir(name), "_tags"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

// repositories lists every repository that holds a manifest or a blob, in lexical order.
func (s *store) repositories() ([]string, error) {
	base := filepath.Join(s.root, "repos")
	var out []string
	err := filepath.WalkDir(base, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() || p == base {
			return nil
		}
		if strings.HasPrefix(e.Name(), "_") {
			if e.Name() == "_manifests" || e.Name() == "_blobs" {
				rel, _ := filepath.Rel(base, filepath.Dir(p))
				out = append(out, filepath.ToSlash(rel))
			}
			return filepath.SkipDir
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	out = dedupSorted(out)
	return out, err
}

func dedupSorted(in []string) []string {
	sort.Strings(in)
	out := in[:0]
	for i, v := range in {
		if i == 0 || v != in[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// referrers lists the digests of the manifests in name whose subject is subject.
func (s *store) referrers(name string, subject digest.Digest) ([]digest.Digest, error) {
	ents, err := os.ReadDir(s.referrersDir(name, subject))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var out []digest.Digest
	for _, e := range ents {
		alg, enc, ok := strings.Cut(e.Name(), "-")
		if !ok {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
		if d.Validate() != nil || !exists(s.manifestLink(name, d)) {
			continue
		}
		out = append(out, d)
	}
	return out, nil
}
