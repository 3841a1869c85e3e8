package container

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"golang.org/x/sys/unix"
)

// initPaths are created in the writable layer by the runtime as mount points, not by the container's
// processes. Docker keeps them in a separate "init" layer, so neither diff nor commit shows them.
var initPaths = map[string]bool{
	"/proc": true, "/sys": true, "/dev": true,
	"/etc/hosts": true, "/etc/hostname": true, "/etc/resolv.conf": true, "/.dockerenv": true,
}

// Changes lists what the container changed in its filesystem, for GET /containers/{id}/changes, sorted
// by path: A (added), C (changed: content, metadata, or a directory whose entries changed), D (deleted).
func (s *Service) Changes(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	c, err := s.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	id, status := c.rec.ID, c.rec.State.Status
	c.mu.Unlock()
	if status == "removing" || status == "dead" {
		return nil, errdefs.Conflict(errors.New("container is marked for removal and cannot be inspected"))
	}
	dirs, err := s.layerDirs(ctx, id)
	if err != nil {
		return nil, err
	}
	var changes []container.FilesystemChange
	if dirs.Overlay {
		changes, err = overlayChanges(ctx, dirs)
	} else {
		changes, err = treeChanges(ctx, dirs.Upper, dirs.Parent)
	}
	if err != nil {
		return nil, errdefs.System(err)
	}
	return dropInitPaths(changes), nil
}

// overlayChanges reads an overlay upper directory: a 0:0 character device is a deletion, an entry the
// lower layers also have is a change, anything else was added. Below an opaque directory, whatever the
// lower layers had and the upper directory does not is deleted.
func overlayChanges(ctx context.Context, d LayerDirs) ([]container.FilesystemChange, error) {
	var out []container.FilesystemChange
	err := filepath.WalkDir(d.Upper, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(d.Upper, p)
		if err != nil || rel == "." {
			return err
		}
		cpath := "/" + filepath.ToSlash(rel)
		fi, err := de.Info()
		if err != nil {
			return err
		}
		if isWhiteout(fi) {
			out = append(out, container.FilesystemChange{Path: cpath, Kind: container.ChangeDelete})
			return nil
		}
		kind := container.ChangeAdd
		if lowerHas(d.Lowers, cpath) {
			kind = container.ChangeModify
		}
		out = append(out, container.FilesystemChange{Path: cpath, Kind: kind})
		if fi.IsDir() && kind == container.ChangeModify && isOpaque(p) {
			out = append(out, hiddenByOpaque(d, p, cpath)...)
		}
		return nil
	})
	sortChanges(out)
	return out, err
}

func isWhiteout(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0
}

func isOpaque(p string) bool {
	buf := make([]byte, 1)
	n, err := unix.Lgetxattr(p, "trusted.overlay.opaque", buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// lowerHas reports whether the merged lower layers show cpath: the top-most layer that mentions it
// decides, a whiteout of it or of a parent hides it, and an opaque parent hides the layers below.
func lowerHas(lowers []string, cpath string) bool {
	parts := strings.Split(strings.TrimPrefix(cpath, "/"), "/")
	for _, l := range lowers {
		hidden := false
		for i := range parts {
			fi, err := os.Lstat(filepath.Join(l, filepath.Join(parts[:i+1]...)))
			if err != nil {
				break
			}
			if isWhiteout(fi) {
				return false
			}
			if i == len(parts)-1 {
				return true
			}
			if fi.IsDir() && isOpaque(filepath.Join(l, filepath.Join(parts[:i+1]...))) {
				hidden = true
			}
		}
		if hidden {
			return false
		}
	}
	return false
}

// hiddenByOpaque lists the entries of the lower layers' dir that an opaque upper dir hides and does not
// itself hold again: the container deleted them (rm -r dir; mkdir dir).
func hiddenByOpaque(d LayerDirs, upperDir, cpath string) []container.FilesystemChange {
	seen := map[string]bool{}
	var out []container.FilesystemChange
	for _, l := range d.Lowers {
		ents, err := os.ReadDir(filepath.Join(l, cpath))
		if err != nil {
			continue
		}
		for _, e := range ents {
			child := path.Join(cpath, e.Name())
			if seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			if _, err := os.Lstat(filepath.Join(upperDir, e.Name())); err == nil {
				continue
			}
			if lowerHas(d.Lowers, child) {
				out = append(out, container.FilesystemChange{Path: child, Kind: container.ChangeDelete})
			}
		}
	}
	return out
}

// treeChanges compares two whole trees, for the copying snapshotter: new is the container's tree, old
// the image's ("" for none). An entry counts as changed when its type, mode, owner, size, mtime, link
// target or device differ; a deleted directory is reported once, not with its contents.
func treeChanges(ctx context.Context, newRoot, oldRoot string) ([]container.FilesystemChange, error) {
	var out []container.FilesystemChange
	err := filepath.WalkDir(newRoot, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(newRoot, p)
		if err != nil || rel == "." {
			return err
		}
		cpath := "/" + filepath.ToSlash(rel)
		if oldRoot == "" {
			out = append(out, container.FilesystemChange{Path: cpath, Kind: container.ChangeAdd})
			return nil
		}
		nfi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		ofi, err := os.Lstat(filepath.Join(oldRoot, rel))
		switch {
		case err != nil:
			out = append(out, container.FilesystemChange{Path: cpath, Kind: container.ChangeAdd})
		case differs(p, filepath.Join(oldRoot, rel), nfi, ofi):
			out = append(out, container.FilesystemChange{Path: cpath, Kind: container.ChangeModify})
		}
		return nil
	})
	if err != nil || oldRoot == "" {
		sortChanges(out)
		return out, err
	}
	err = filepath.WalkDir(oldRoot, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(oldRoot, p)
		if err != nil || rel == "." {
			return err
		}
		if _, err := os.Lstat(filepath.Join(newRoot, rel)); errors.Is(err, fs.ErrNotExist) {
			out = append(out, container.FilesystemChange{Path: "/" + filepath.ToSlash(rel), Kind: container.ChangeDelete})
			if de.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	sortChanges(out)
	return out, err
}

func differs(newPath, oldPath string, n, o fs.FileInfo) bool {
	ns, ok1 := n.Sys().(*syscall.Stat_t)
	os_, ok2 := o.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return true
	}
	if n.Mode() != o.Mode() || ns.Uid != os_.Uid || ns.Gid != os_.Gid || ns.Rdev != os_.Rdev {
		return true
	}
	if n.Mode()&fs.ModeSymlink != 0 {
		a, _ := os.Readlink(newPath)
		b, _ := os.Readlink(oldPath)
		return a != b
	}
	return (!n.IsDir() && n.Size() != o.Size()) || !n.ModTime().Equal(o.ModTime())
}

func sortChanges(c []container.FilesystemChange) {
	sort.Slice(c, func(i, j int) bool { return c[i].Path < c[j].Path })
}

// dropInitPaths removes the runtime's mount points when they were added, then the "changed" parents
// that only showed because of them.
func dropInitPaths(in []container.FilesystemChange) []container.FilesystemChange {
	dropped := map[string]bool{}
	kept := in[:0]
	for _, c := range in {
		if initPaths[c.Path] && c.Kind == container.ChangeAdd {
			dropped[path.Dir(c.Path)] = true
			continue
		}
		kept = append(kept, c)
	}
	out := kept[:0]
	for i, c := range kept {
		if c.Kind == container.ChangeModify && dropped[c.Path] {
			prefix := strings.TrimSuffix(c.Path, "/") + "/"
			if i+1 >= len(kept) || !strings.HasPrefix(kept[i+1].Path, prefix) {
				continue
			}
		}
		out = append(out, c)
	}
	return out
}
