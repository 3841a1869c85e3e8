package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/runtime/userns"
	"github.com/berth-dev/berth/internal/snapshot"
)

// Without idmapped mounts, remapped containers use chowned copies of their image's layers and have
// their own layer shifted in place (see userns.ShiftTree). The copies live next to each layer
// ("fs-<uid>.<gid>" beside "fs"), so they go with the layer's snapshot; a marker beside a container's
// own layer says it is shifted, and by which remap.

var shiftMu sync.Mutex // one copy of a layer at a time; copies are made once

// shiftedCopy returns the chowned copy of the layer directory dir, making it on first use.
func shiftedCopy(rm *userns.Remap, dir string) (string, error) {
	dst := dir + "-" + rm.Tag()
	shiftMu.Lock()
	defer shiftMu.Unlock()
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := rm.CopyShifted(dir, dst); err != nil {
		return "", fmt.Errorf("making a chowned copy of layer %s for user namespaces: %w", dir, err)
	}
	return dst, nil
}

func shiftMarker(layer string) string { return filepath.Join(filepath.Dir(layer), "remapped") }

// shiftedBy reports the remap a container's layer is shifted by: nil if it is not shifted.
func shiftedBy(rm *userns.Remap, layer string) (*userns.Remap, error) {
	b, err := os.ReadFile(shiftMarker(layer))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rm == nil || string(b) != rm.Tag() {
		return nil, fmt.Errorf("the container's files are owned by the ids of --userns-remap %s; start berthd with that mapping to use it", strings.TrimSpace(string(b)))
	}
	return rm, nil
}

// shiftLayer shifts a container's own layer into the remap's range the first time it runs remapped.
func shiftLayer(rm *userns.Remap, layer string) error {
	if by, err := shiftedBy(rm, layer); err != nil || by != nil {
		return err
	}
	if err := rm.ShiftTree(layer); err != nil {
		return fmt.Errorf("shifting the container's files for user namespaces: %w", err)
	}
	return os.WriteFile(shiftMarker(layer), []byte(rm.Tag()), 0o600)
}

// mountShifted mounts a container's rootfs from chowned copies of its image's layers and its shifted
// own layer.
func mountShifted(mt snapshot.Mount, target string, rm *userns.Remap) error {
	if mt.Type != "overlay" {
		if err := shiftLayer(rm, mt.Source); err != nil {
			return err
		}
		return mt.Mount(target)
	}
	opts := make([]string, 0, len(mt.Options))
	for _, o := range mt.Options {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			var lowers []string
			for _, l := range strings.Split(v, ":") {
				c, err := shiftedCopy(rm, l)
				if err != nil {
					return err
				}
				lowers = append(lowers, c)
			}
			o = "lowerdir=" + strings.Join(lowers, ":")
		case "upperdir":
			if err := shiftLayer(rm, v); err != nil {
				return err
			}
		}
		opts = append(opts, o)
	}
	return snapshot.Mount{Type: mt.Type, Source: mt.Source, Options: opts}.Mount(target)
}

// shiftedDirs points a shifted container's layer directories at the chowned copies of its image's.
func shiftedDirs(rm *userns.Remap, d container.LayerDirs) (container.LayerDirs, error) {
	by, err := shiftedBy(rm, d.Upper)
	if err != nil || by == nil {
		return d, err
	}
	d.Shifted = by
	lowers := make([]string, len(d.Lowers))
	for i, l := range d.Lowers {
		if lowers[i], err = shiftedCopy(rm, l); err != nil {
			return d, err
		}
	}
	d.Lowers = lowers
	if d.Parent != "" {
		if d.Parent, err = shiftedCopy(rm, d.Parent); err != nil {
			return d, err
		}
	}
	return d, nil
}

// LayerDirs is the layer's directories as the snapshotter has them, or their chowned copies when the
// container's layer is shifted.
func (m rootfsManager) LayerDirs(ctx context.Context, id string) (container.LayerDirs, error) {
	d, err := m.layerDirs(ctx, id)
	if err != nil || m.remap == nil || m.remap.IDMapped {
		return d, err
	}
	return shiftedDirs(m.remap, d)
}
