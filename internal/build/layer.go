package build

import (
	"archive/tar"
	"io"
	"time"
)

// clampTimes rewrites a layer tar so that no entry is newer than epoch: what a step created gets the
// build's time instead of the wall clock, which makes the layer's digest repeatable.
// The caller closes the result, which stops the rewriting when the reader gives up early.
func clampTimes(r io.Reader, epoch time.Time) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		tr, tw := tar.NewReader(r), tar.NewWriter(pw)
		err := func() error {
			for {
				hdr, err := tr.Next()
				if err == io.EOF {
					return tw.Close()
				}
				if err != nil {
					return err
				}
				if hdr.ModTime.After(epoch) {
					hdr.ModTime = epoch
				}
				hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
				hdr.Format = tar.FormatPAX
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return err
				}
			}
		}()
		// Drain what is left so the writer feeding r never blocks on a reader that gave up.
		if err != nil {
			io.Copy(io.Discard, r)
		}
		pw.CloseWithError(err)
	}()
	return pr
}
