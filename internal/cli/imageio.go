package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

func newImportCommand(e *env) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src := image.ImportSource{SourceName: "-"}
			switch {
			case args[0] == "-":
				src.Source = e.In
			case strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://"):
				src.SourceName = args[0]
			default:
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				src.Source = f
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			if err := e.ensureVersion(ctx); err != nil {
				return err
			}
			c, _ := e.api()
			rc, err := c.ImageImport(ctx, src, ref, image.ImportOptions{Message: message, Changes: changes, Platform: platform})
			if err != nil {
				return err
			}
			defer rc.Close()
			return displayJSONStream(rc, e.Out, false)
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	cmd.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

// ensureVersion settles the API version before a streamed upload, which cannot be retried.
func (e *env) ensureVersion(ctx context.Context) error {
	if _, err := e.api(); err != nil {
		return err
	}
	return e.eng.ensureVersion(ctx)
}

func newLoadCommand(e *env) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var in io.Reader = e.In
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if _, isTerm := terminalFd(e.In); isTerm || e.In == nil {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			if err := e.ensureVersion(ctx); err != nil {
				return err
			}
			c, _ := e.api()
			resp, err := c.ImageLoad(ctx, in, client.ImageLoadWithQuiet(quiet))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.JSON {
				return displayJSONStream(resp.Body, e.Out, false)
			}
			_, err = io.Copy(e.Out, resp.Body)
			return err
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}

func newSaveCommand(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return saveArchive(ctx, e, output, func(c *client.Client) (io.ReadCloser, error) {
				return c.ImageSave(ctx, args)
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

// writeFileAtomic streams r into path through a temporary file in the same directory, so an interrupted
// save never leaves a truncated archive under the final name.
func writeFileAtomic(path string, r io.Reader) error {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("failed to save image: invalid output path: directory %q does not exist", dir)
	}
	tmp, err := os.CreateTemp(dir, ".berth-save-*")
	if err != nil {
		return fmt.Errorf("failed to save image: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("failed to save image: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
