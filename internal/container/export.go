package container

import (
	"context"
	"io"

	"github.com/berth-dev/berth/internal/archive"
)

// Export returns the container's whole root filesystem as a tar, for GET /containers/{id}/export. It
// is the rootfs (image layers plus the writable layer), not what is mounted inside the container, so
// /proc, /sys, /dev and volumes are left out, as in Docker. The caller must close the reader.
func (s *Service) Export(ctx context.Context, ref string) (io.ReadCloser, error) {
	v, err := s.openRoot(ctx, ref, false)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		defer v.close()
		pw.CloseWithError(archive.WriteEntryAt(ctx, pw, v.fd, ".", ""))
	}()
	s.event("export", v.id, nil)
	return unshiftTar(pr, v.shifted), nil
}
