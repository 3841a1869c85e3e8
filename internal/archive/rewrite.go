package archive

import (
	"archive/tar"
	"io"
)

// RewriteHeaders streams the tar in r through edit, which may change each entry's header (names,
// owners, times); contents pass unchanged. The caller closes the result, which stops the rewriting when
// it gives up early. What r has left after an error is drained, so the writer feeding r never blocks.
func RewriteHeaders(r io.Reader, edit func(*tar.Header)) io.ReadCloser {
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
				edit(hdr)
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if _, err := io.Copy(tw, tr); err != nil {
					return err
				}
			}
		}()
		if err != nil {
			_, _ = io.Copy(io.Discard, r)
		}
		pw.CloseWithError(err)
	}()
	return pr
}
