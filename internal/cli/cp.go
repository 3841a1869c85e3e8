package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// filesystemCommands are the container commands of cp.go, diff.go, commit.go and export.go.
var filesystemCommands = []func(*env) *cobra.Command{newCpCommand, newDiffCommand, newCommitCommand, newExportCommand}

type cpOptions struct {
	archive, follow, quiet bool
}

func newCpCommand(e *env) *cobra.Command {
	var o cpOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: "Copy files/folders between a container and the local filesystem\n\n" +
			"Use '-' as the source to read a tar archive from stdin\nand extract it to a directory destination in a container.\n" +
			"Use '-' as the destination to stream a tar archive of a\ncontainer source to stdout.",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, src := splitCpArg(args[0])
			dstCtr, dst := splitCpArg(args[1])
			switch {
			case src == "":
				return errors.New("source can not be empty")
			case dst == "":
				return errors.New("destination can not be empty")
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr != "":
				return copyFromContainer(cmd.Context(), e, o, srcCtr, src, dst)
			case dstCtr != "":
				return copyToContainer(cmd.Context(), e, o, src, dstCtr, dst)
			}
			return errors.New("must specify at least one container source")
		},
	}
	cmd.Flags().BoolVarP(&o.archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&o.follow, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	cmd.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output during copy")
	return cmd
}

// splitCpArg splits CONTAINER:PATH as docker does: an absolute path or one starting with "." is local
// even when it contains a colon.
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	name, rest, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(name, ".") {
		return "", arg
	}
	return name, rest
}

// cpBase is the name a path's archive entries start with: its last element, "." for "dir/." (the
// directory's contents).
func cpBase(p string) string {
	if p == "." || strings.HasSuffix(p, "/.") {
		return "."
	}
	return filepath.Base(filepath.Clean(p))
}

func assertsDir(p string) bool { return strings.HasSuffix(p, "/") || cpBase(p) == "." }

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func (e *env) copied(o cpOptions, n int64, dst string) {
	if !o.quiet {
		fmt.Fprintf(e.Err, "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(n), 3), dst)
	}
}

func copyFromContainer(ctx context.Context, e *env, o cpOptions, ctr, src, dst string) error {
	rebase := ""
	if o.follow {
		var st container.PathStat
		err := e.do(ctx, func(c *client.Client) error {
			var err error
			st, err = c.ContainerStatPath(ctx, ctr, src)
			return err
		})
		if err != nil {
			return err
		}
		if st.Mode&os.ModeSymlink != 0 {
			rebase = cpBase(src)
			target := st.LinkTarget
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(src), target)
			}
			src = target
		}
	}
	var (
		rc   io.ReadCloser
		stat container.PathStat
	)
	err := e.do(ctx, func(c *client.Client) error {
		var err error
		rc, stat, err = c.CopyFromContainer(ctx, ctr, src)
		return err
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	if dst == "-" {
		_, err := io.Copy(e.Out, rc)
		return err
	}
	srcBase, newBase := cpBase(src), cpBase(src)
	if rebase != "" {
		newBase = rebase
	}
	dir := dst
	fi, err := os.Stat(dst)
	switch {
	case err == nil && fi.IsDir():
	case err == nil && stat.Mode.IsDir():
		return errors.New("cannot copy directory")
	case err == nil:
		dir, newBase = filepath.Dir(dst), filepath.Base(dst)
	case !errors.Is(err, os.ErrNotExist):
		return err
	case assertsDir(dst) && !stat.Mode.IsDir():
		return fmt.Errorf("destination directory %s does not exist", dst)
	default:
		dir, newBase = filepath.Dir(dst), filepath.Base(filepath.Clean(dst))
	}
	owner := -1
	if !o.archive {
		owner = os.Getuid() // files copied out belong to whoever copied them, as with docker
	}
	cw := &countWriter{}
	stream := rebaseTar(io.TeeReader(rc, cw), srcBase, newBase, owner, os.Getgid())
	defer stream.Close()
	if _, err := archive.Apply(ctx, dir, stream, archive.ApplyOptions{}); err != nil {
		return err
	}
	e.copied(o, cw.n, dst)
	return nil
}

// rebaseTar renames entries starting with oldBase to start with newBase and, with uid >= 0, gives them
// uid and gid.
func rebaseTar(r io.Reader, oldBase, newBase string, uid, gid int) io.ReadCloser {
	return archive.RewriteHeaders(r, func(hdr *tar.Header) {
		hdr.Name = rebaseName(hdr.Name, oldBase, newBase)
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = rebaseName(hdr.Linkname, oldBase, newBase)
		}
		if uid >= 0 {
			hdr.Uid, hdr.Gid = uid, gid
		}
	})
}

func rebaseName(name, oldBase, newBase string) string {
	if oldBase == newBase {
		return name
	}
	if oldBase == "." {
		return path.Join(newBase, name)
	}
	if name == oldBase || strings.HasPrefix(name, oldBase+"/") {
		return newBase + name[len(oldBase):]
	}
	return name
}

func copyToContainer(ctx context.Context, e *env, o cpOptions, src, ctr, dst string) error {
	opts := container.CopyToContainerOptions{CopyUIDGID: o.archive}
	if src == "-" {
		return e.do(ctx, func(c *client.Client) error { return c.CopyToContainer(ctx, ctr, dst, e.In, opts) })
	}
	if o.follow {
		p, err := filepath.EvalSymlinks(src)
		if err != nil {
			return err
		}
		src = p
	}
	srcInfo, err := os.Lstat(src)
	if err != nil {
		return err
	}
	var dstStat container.PathStat
	statErr := e.do(ctx, func(c *client.Client) error {
		var err error
		dstStat, err = c.ContainerStatPath(ctx, ctr, dst)
		return err
	})
	if statErr == nil && dstStat.Mode&os.ModeSymlink != 0 && !assertsDir(dst) {
		dst = dstStat.LinkTarget
		statErr = e.do(ctx, func(c *client.Client) error {
			var err error
			dstStat, err = c.ContainerStatPath(ctx, ctr, dst)
			return err
		})
	}
	dir, name := dst, cpBase(src)
	switch {
	case statErr == nil && dstStat.Mode.IsDir():
	case statErr == nil && srcInfo.IsDir():
		return errors.New("cannot copy directory")
	case statErr == nil:
		dir, name = path.Dir(dst), path.Base(dst)
	case assertsDir(dst) && !srcInfo.IsDir():
		return fmt.Errorf("destination directory %s:%s does not exist", ctr, dst)
	default:
		// The daemon says what is wrong if the parent is missing too.
		dir, name = path.Dir(path.Clean(dst)), path.Base(path.Clean(dst))
	}

	parent, base := filepath.Split(filepath.Clean(src))
	if cpBase(src) == "." {
		parent, base = filepath.Clean(src), "."
	}
	if parent == "" {
		parent = "."
	}
	pfd, err := unix.Open(parent, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: parent, Err: err}
	}
	defer unix.Close(pfd)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.WriteEntryAt(ctx, pw, pfd, base, name)) }()
	defer pr.Close()
	cw := &countWriter{}
	err = e.do(ctx, func(c *client.Client) error {
		return c.CopyToContainer(ctx, ctr, dir, io.TeeReader(pr, cw), opts)
	})
	if err != nil {
		return err
	}
	e.copied(o, cw.n, ctr+":"+dst)
	return nil
}
