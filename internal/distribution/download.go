package distribution

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	digest "github.com/opencontainers/go-digest"
)

// download fetches one blob into a file that readers may follow while it grows.
type download struct {
	dgst digest.Digest
	size int64
	path string

	mu   sync.Mutex
	cond *sync.Cond
	have int64 // bytes on disk, all hashed
	done bool
	err  error // set with done when the blob could not be fetched or verified
}

// blobFile is where a blob being pulled is kept under dir.
func blobFile(dir string, dgst digest.Digest) string {
	return filepath.Join(dir, dgst.Algorithm().String()+"-"+dgst.Encoded())
}

func newDownload(dir string, dgst digest.Digest, size int64) *download {
	d := &download{dgst: dgst, size: size, path: blobFile(dir, dgst)}
	d.cond = sync.NewCond(&d.mu)
	return d
}

func (d *download) progress(n int64) {
	d.mu.Lock()
	d.have = n
	d.mu.Unlock()
	d.cond.Broadcast()
}

func (d *download) finish(err error) {
	d.mu.Lock()
	d.done, d.err = true, err
	d.mu.Unlock()
	d.cond.Broadcast()
}

func newHash(d digest.Digest) (hash.Hash, error) {
	switch d.Algorithm() {
	case digest.SHA256:
		return sha256.New(), nil
	case digest.SHA512:
		return sha512.New(), nil
	}
	return nil, errdefs.InvalidParameter(fmt.Errorf("unsupported digest algorithm %q", d.Algorithm()))
}

// maxAttempts bounds how often one blob is resumed after a broken transfer within one pull.
const maxAttempts = 5

// run fetches the blob, resuming what an earlier run left on disk, and verifies it. fetch(offset) must
// return the blob from offset on; partial says whether the server honoured the offset (206).
func (d *download) run(ctx context.Context, fetch func(ctx context.Context, offset int64) (rc io.ReadCloser, partial bool, err error), report func(have, total int64)) {
	err := d.fetchAll(ctx, fetch, report)
	if err != nil && !isTransient(err) {
		// A blob that fails verification is garbage: do not resume from it.
		os.Remove(d.path)
	}
	d.finish(err)
}

func (d *download) fetchAll(ctx context.Context, fetch func(ctx context.Context, offset int64) (io.ReadCloser, bool, error), report func(have, total int64)) error {
	f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return errdefs.System(err)
	}
	defer f.Close()
	h, err := newHash(d.dgst)
	if err != nil {
		return err
	}
	// What an interrupted pull left is hashed again rather than trusted: it costs a local read, and a
	// torn write from a crash cannot slip through.
	have, err := io.Copy(h, io.LimitReader(f, d.size))
	if err != nil {
		return errdefs.System(err)
	}
	if have > 0 && have < d.size {
		if _, err := f.Seek(have, io.SeekStart); err != nil {
			return errdefs.System(err)
		}
	}
	if err := f.Truncate(have); err != nil {
		return errdefs.System(err)
	}
	d.progress(have)
	buf := make([]byte, 256<<10)
	for attempt := 1; have < d.size; attempt++ {
		rc, partial, err := fetch(ctx, have)
		if err == nil && !partial && have > 0 {
			// The server ignored Range: start over.
			have = 0
			h.Reset()
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				rc.Close()
				return errdefs.System(err)
			}
			f.Truncate(0)
			d.progress(0)
		}
		if err == nil {
			err = func() error {
				defer rc.Close()
				for have < d.size {
					n, rerr := rc.Read(buf[:min(int64(len(buf)), d.size-have)])
					if n > 0 {
						if _, werr := f.Write(buf[:n]); werr != nil {
							return errdefs.System(werr)
						}
						h.Write(buf[:n])
						have += int64(n)
						d.progress(have)
						report(have, d.size)
					}
					if rerr == io.EOF {
						if have < d.size {
							return transient(fmt.Errorf("unexpected EOF after %d of %d bytes", have, d.size))
						}
						break
					}
					if rerr != nil {
						return transient(rerr)
					}
				}
				return nil
			}()
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return transient(ctx.Err())
		}
		if !isTransient(err) || attempt >= maxAttempts {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		case <-ctx.Done():
			return transient(ctx.Err())
		}
	}
	if got := digest.NewDigest(d.dgst.Algorithm(), h); got != d.dgst {
		return errdefs.InvalidParameter(fmt.Errorf("filesystem layer verification failed for digest %s: got %s", d.dgst, got))
	}
	return nil
}

// transientError marks a failure worth resuming: the bytes so far are good, the transfer broke.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

func transient(err error) error { return transientError{err} }

func isTransient(err error) bool {
	var t transientError
	return errors.As(err, &t)
}

// follower reads a download's file as it grows and ends with the download's verdict: io.EOF only
// once every byte is on disk and the digest matched.
type follower struct {
	d   *download
	f   *os.File
	off int64
	// onRead reports progress of whoever consumes the blob (the unpacker).
	onRead func(off, total int64)
}

func (d *download) follow(onRead func(off, total int64)) (*follower, error) {
	d.mu.Lock()
	for d.have == 0 && !d.done {
		// The file may not exist before the downloader opened it.
		d.cond.Wait()
	}
	err := d.err
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(d.path)
	if err != nil {
		return nil, errdefs.System(err)
	}
	return &follower{d: d, f: f, onRead: onRead}, nil
}

func (r *follower) Read(p []byte) (int, error) {
	d := r.d
	d.mu.Lock()
	for r.off >= d.have && !d.done {
		d.cond.Wait()
	}
	have, done, err := d.have, d.done, d.err
	d.mu.Unlock()
	if r.off >= have {
		if err != nil {
			return 0, err
		}
		if done {
			return 0, io.EOF
		}
	}
	if err != nil && done && r.off+int64(len(p)) >= have {
		// Never hand over the tail of a blob that failed verification.
		return 0, err
	}
	n, rerr := r.f.ReadAt(p[:min(int64(len(p)), have-r.off)], r.off)
	r.off += int64(n)
	if r.onRead != nil {
		r.onRead(r.off, d.size)
	}
	if rerr == io.EOF {
		rerr = nil
	}
	return n, rerr
}

func (r *follower) Close() error { return r.f.Close() }

// httpFetch returns a fetch function for download.run that GETs url with a Range header. A response
// whose length disagrees with the size the manifest gave is refused at once: that blob is not the
// one asked for, and retrying will not change it.
func httpFetch(client *http.Client, url string, size int64) func(ctx context.Context, offset int64) (io.ReadCloser, bool, error) {
	return func(ctx context.Context, offset int64) (io.ReadCloser, bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, false, err
		}
		if offset > 0 {
			req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, false, transient(err)
		}
		want := size
		if resp.StatusCode == http.StatusPartialContent {
			want = size - offset
		}
		if (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusPartialContent) && resp.ContentLength >= 0 && resp.ContentLength != want {
			resp.Body.Close()
			return nil, false, errdefs.InvalidParameter(fmt.Errorf("blob is %d bytes from offset %d, the manifest says %d in all", resp.ContentLength, offset, size))
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return resp.Body, false, nil
		case http.StatusPartialContent:
			return resp.Body, true, nil
		}
		defer resp.Body.Close()
		return nil, false, registryError(resp, "blob")
	}
}
