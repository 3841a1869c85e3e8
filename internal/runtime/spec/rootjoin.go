package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// JoinInRoot resolves path inside root as if root were "/": symlinks are followed, but absolute link
// targets and ".." are interpreted relative to root, so the result never names a file outside root.
// Components that do not exist are kept as they are. The check is not race-free against a container
// that is already running; it is meant for a rootfs that nothing inside is changing yet.
func JoinInRoot(root, path string) (string, error) {
	root = filepath.Clean(root)
	resolved := "/"
	parts := strings.Split(path, "/")
	links := 0
	for len(parts) > 0 {
		p := parts[0]
		parts = parts[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, p)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				resolved = next
				continue
			}
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			resolved = next
			continue
		}
		if links++; links > 255 {
			return "", &os.PathError{Op: "resolve", Path: path, Err: syscall.ELOOP}
		}
		dest, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(dest) {
			resolved = "/"
		}
		parts = append(strings.Split(dest, "/"), parts...)
	}
	return filepath.Join(root, resolved), nil
}
