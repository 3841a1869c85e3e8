package userns

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/berth-dev/berth/internal/fsutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Without idmapped mounts (kernels before 5.19, or a data root on a filesystem that cannot take them)
// a remapped container's files must really be owned by the remapped ids on disk: its image layers are
// used through chowned copies (made once per layer, kept next to the layer), and its own writable layer
// is shifted in place the first time it runs remapped. The engine shifts ids back wherever it reads
// that layer into a tar (commit, export, cp) and forward wherever it writes into it.

// ContainerUID maps a host uid back to the container's, and says whether it is in the range at all.
func (r *Remap) ContainerUID(id int) (int, bool) { return toContainer(r.UIDs, id) }

// ContainerGID maps a host gid back to the container's.
func (r *Remap) ContainerGID(id int) (int, bool) { return toContainer(r.GIDs, id) }

func toContainer(m []specs.LinuxIDMapping, id int) (int, bool) {
	for _, e := range m {
		if id >= int(e.HostID) && id < int(e.HostID+e.Size) {
			return int(e.ContainerID) + id - int(e.HostID), true
		}
	}
	return -1, false
}

// Tag names a remap in file names: "<uid>.<gid>" of the container's root, as Docker names its remapped
// roots.
func (r *Remap) Tag() string { return fmt.Sprintf("%d.%d", r.RootUID(), r.RootGID()) }

// toHostIDs shifts an owner into the range; ids outside the container's range become the container's
// nobody (its 65534), so that nothing is left owned by a host id.
func (r *Remap) toHostIDs(uid, gid int) (int, int) {
	u, ok := r.HostUID(uid)
	if !ok {
		u, _ = r.HostUID(65534)
	}
	g, ok := r.HostGID(gid)
	if !ok {
		g, _ = r.HostGID(65534)
	}
	return u, g
}

// lchownKeepMode changes an owner and puts back what chown clears: the setuid and setgid bits, and file
// capabilities.
func lchownKeepMode(p string, fi fs.FileInfo, uid, gid int) error {
	var fcaps []byte
	if fi.Mode().IsRegular() {
		if n, err := unix.Lgetxattr(p, "security.capability", nil); err == nil && n > 0 {
			fcaps = make([]byte, n)
			if n, err = unix.Lgetxattr(p, "security.capability", fcaps); err != nil {
				fcaps = nil
			} else {
				fcaps = fcaps[:n]
			}
		}
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		return err
	}
	if fcaps != nil {
		if err := unix.Lsetxattr(p, "security.capability", fcaps, 0); err != nil {
			return fmt.Errorf("restore file capabilities of %s: %w", p, err)
		}
	}
	if fi.Mode()&fs.ModeSymlink == 0 && fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
		st := fi.Sys().(*syscall.Stat_t)
		return unix.Chmod(p, st.Mode&0o7777)
	}
	return nil
}

// ShiftTree moves every owner under dir (dir included) into the remap's range.
func (r *Remap) ShiftTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if _, inRange := r.ContainerUID(int(st.Uid)); inRange {
			return nil // already shifted (a shift interrupted halfway is resumed)
		}
		u, g := r.toHostIDs(int(st.Uid), int(st.Gid))
		return lchownKeepMode(p, fi, u, g)
	})
}

// CopyShifted copies the layer tree src to dst (which must not exist) with every owner moved into the
// remap's range; everything else a layer holds is kept (fsutil.CopyTree). The copy is made beside dst
// and renamed into place, so a copy cut short is never taken for a whole one.
func (r *Remap) CopyShifted(src, dst string) error {
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return err
	}
	if err := fsutil.CopyTree(context.Background(), src, tmp, r.toHostIDs); err != nil {
		_ = os.RemoveAll(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}
