package container

import (
	"context"
	"io"
)

// WriteLayer writes the container's writable layer to w as an OCI layer tar, without the runtime's own
// mount points: what a commit would add on top of the container's image. The builder uses it to turn a
// RUN step's container into a layer.
func (s *Service) WriteLayer(ctx context.Context, ref string, w io.Writer) error {
	c, err := s.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	id := c.rec.ID
	c.mu.Unlock()
	dirs, err := s.layerDirs(ctx, id)
	if err != nil {
		return err
	}
	return writeLayer(ctx, w, dirs)
}
