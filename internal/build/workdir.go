package build

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// workdirStep commits WORKDIR. As in Docker's builder, a directory the image lacks is created (owned by
// root, mode 0755, with any missing parents) in a layer of its own, so `docker history` shows it and
// RUN, COPY and the container all find it; an existing one makes a config-only step. The layer's
// entries carry the stage's epoch, so the same build gives the same layer digest.
func (b *builder) workdirStep(ctx context.Context, st *stage) error {
	dir := st.config.WorkingDir
	createdBy := strings.Join(st.shell(), " ") + " #(nop)  WORKDIR " + dir
	if dir == "/" {
		return b.commitConfig(ctx, st, "WORKDIR "+dir)
	}
	var parent *os.Root
	if st.imageID != "" {
		mnt, release, err := b.svc.cfg.Images.Mount(ctx, st.imageID)
		if err != nil {
			return err
		}
		defer release()
		if parent, err = os.OpenRoot(mnt); err != nil {
			return errdefs.System(err)
		}
		defer parent.Close()
		// Through the image's own symlinks (WORKDIR /bin/x with /bin -> usr/bin makes /usr/bin/x).
		dir = resolveIn(parent, dir)
		fi, err := parent.Stat(rel(dir))
		switch {
		case err == nil && fi.IsDir():
			return b.commitConfig(ctx, st, "WORKDIR "+st.config.WorkingDir)
		case err == nil || !errors.Is(err, fs.ErrNotExist):
			return errdefs.InvalidParameter(fmt.Errorf("WORKDIR %s: not a directory in the image", st.config.WorkingDir))
		}
	}
	tmp, err := os.CreateTemp(b.svc.cfg.Root, "layer-*")
	if err != nil {
		return errdefs.System(err)
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	lw := &layerWriter{tw: tar.NewWriter(tmp), sum: sha256.New(), epoch: st.epoch, parent: parent, seen: map[string]bool{}}
	if err := lw.parents(dir + "/"); err != nil {
		return err
	}
	if err := lw.tw.Close(); err != nil {
		return errdefs.System(err)
	}
	key := cacheKey(st.imageID, "workdir", createdBy, st.config, fmt.Sprintf("%x", lw.sum.Sum(nil)))
	return b.cachedStep(ctx, st, key, createdBy, func() (string, error) {
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return "", errdefs.System(err)
		}
		return b.svc.cfg.Images.WriteChild(ctx, Child{Parent: st.imageID, Layer: bufio.NewReader(tmp), Config: st.config, CreatedBy: createdBy, Created: st.epoch})
	})
}
