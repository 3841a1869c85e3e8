package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// maxDockerfile bounds a Dockerfile read into memory (the parser needs it whole).
const maxDockerfile = 16 << 20

// buildContext is a build's context unpacked on disk, and its Dockerfile.
type buildContext struct {
	dir        string   // what to remove at the end; "" when the build has no context (a Dockerfile alone on stdin)
	rootDir    string   // the context's top, dir or a directory in it
	root       *os.Root // dir, opened so no name or symlink can lead outside it
	dockerfile []byte
	// known, for a synced context, is the content digest of the regular file at p (relative to root)
	// when fi is the inode it was taken from; nil for an unpacked tar.
	known func(p string, fi fs.FileInfo) (string, bool)
	// release, for a synced context, lets go of its tree instead of removing dir.
	release func()
}

func (c *buildContext) Close() {
	if c.root != nil {
		c.root.Close()
	}
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
	if c.release != nil {
		c.release()
	}
}

// openContext unpacks src into a fresh directory under tmpRoot (streaming: the context is never held in
// memory), applies .dockerignore and reads the Dockerfile. A src that is not a tar is the Dockerfile
// itself, as `docker build - < Dockerfile` sends it.
func openContext(ctx context.Context, tmpRoot string, src io.Reader, dockerfile string) (*buildContext, error) {
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	r, isTar, err := sniff(src)
	if err != nil {
		return nil, err
	}
	if !isTar {
		b, err := io.ReadAll(io.LimitReader(r, maxDockerfile+1))
		if err != nil {
			return nil, err
		}
		if len(b) > maxDockerfile {
			return nil, errdefs.InvalidParameter(errors.New("the Dockerfile is too large"))
		}
		return &buildContext{dockerfile: b}, nil
	}
	dir, err := os.MkdirTemp(tmpRoot, "context-")
	if err != nil {
		return nil, errdefs.System(err)
	}
	c := &buildContext{dir: dir}
	if _, err := archive.Apply(ctx, dir, r, archive.ApplyOptions{NoDevices: true}); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errdefs.InvalidParameter(fmt.Errorf("reading the build context: %w", err))
	}
	if err := c.finish(dir, dockerfile); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// finish opens the unpacked context at dir (inside c.dir), reads the Dockerfile and applies .dockerignore.
func (c *buildContext) finish(dir, dockerfile string) error {
	var err error
	if c.root, err = os.OpenRoot(dir); err != nil {
		return errdefs.System(err)
	}
	c.rootDir = dir
	name := path.Clean("/" + filepath.ToSlash(dockerfile))[1:]
	b, err := readFileIn(c.root, name)
	if errors.Is(err, fs.ErrNotExist) && dockerfile == "Dockerfile" {
		b, err = readFileIn(c.root, "dockerfile")
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.InvalidParameter(fmt.Errorf("Cannot locate specified Dockerfile: %s", dockerfile))
		}
		return errdefs.InvalidParameter(fmt.Errorf("reading the Dockerfile: %w", err))
	}
	c.dockerfile = b
	return c.applyIgnore()
}

func readFileIn(root *os.Root, name string) ([]byte, error) {
	f, err := root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDockerfile+1))
	if err == nil && len(b) > maxDockerfile {
		err = errors.New("the Dockerfile is too large")
	}
	return b, err
}

// applyIgnore removes what .dockerignore excludes. The docker CLI already leaves it out, but other
// clients may not, and COPY must never see an excluded file.
func (c *buildContext) applyIgnore() error {
	f, err := c.root.Open(".dockerignore")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return errdefs.InvalidParameter(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("reading .dockerignore: %w", err))
	}
	if len(patterns) == 0 {
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid .dockerignore: %w", err))
	}
	return ignoreWalk(c.rootDir, pm)
}

// ignoreWalk removes the paths under dir that pm excludes. A directory is descended into even when
// excluded if some pattern is an exception, since "!dir/keep" may bring back something inside it.
func ignoreWalk(dir string, pm *patternmatcher.PatternMatcher) error {
	var walk func(rel string, parent patternmatcher.MatchInfo) error
	walk = func(rel string, parent patternmatcher.MatchInfo) error {
		ents, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, e := range ents {
			p := path.Join(rel, e.Name())
			excluded, info, err := pm.MatchesUsingParentResults(p, parent)
			if err != nil {
				return errdefs.InvalidParameter(err)
			}
			if e.IsDir() && (!excluded || pm.Exclusions()) {
				if err := walk(p, info); err != nil {
					return err
				}
				if excluded {
					// Keep the directory only when an exception kept something in it.
					os.Remove(filepath.Join(dir, p))
				}
				continue
			}
			if excluded {
				if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk("", patternmatcher.MatchInfo{})
}

// sniff tells a (maybe compressed) tar from a bare Dockerfile and returns the uncompressed stream.
func sniff(src io.Reader) (io.Reader, bool, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	magic, _ := br.Peek(6)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, false, errdefs.InvalidParameter(err)
		}
		r = zr
	case bytes.HasPrefix(magic, []byte("BZh")):
		r = bzip2.NewReader(br)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, false, errdefs.NotImplemented(errors.New("xz-compressed build contexts are not supported"))
	}
	if r != io.Reader(br) {
		return r, true, nil
	}
	head, _ := br.Peek(1024)
	if len(head) == 0 {
		return br, true, nil // an empty body is an empty context, which then lacks a Dockerfile
	}
	if len(head) >= 262 && string(head[257:262]) == "ustar" {
		return br, true, nil
	}
	if _, err := tar.NewReader(bytes.NewReader(head)).Next(); err == nil {
		return br, true, nil
	}
	return br, false, nil
}
