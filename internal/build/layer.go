package build

import (
	"archive/tar"
	"io"
	"time"

	"github.com/berth-dev/berth/internal/archive"
)

// clampTimes rewrites a layer tar so that no entry is newer than epoch: what a step created gets the
// build's time instead of the wall clock, which makes the layer's digest repeatable.
// The caller closes the result, which stops the rewriting when the reader gives up early.
func clampTimes(r io.Reader, epoch time.Time) io.ReadCloser {
	return archive.RewriteHeaders(r, func(hdr *tar.Header) {
		if hdr.ModTime.After(epoch) {
			hdr.ModTime = epoch
		}
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
	})
}
