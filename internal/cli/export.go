package cli

import (
	"context"
	"errors"
	"io"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

func newExportCommand(e *env) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return saveArchive(ctx, e, output, func(c *client.Client) (io.ReadCloser, error) {
				return c.ContainerExport(ctx, args[0])
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

// saveArchive writes the tar that open streams to output, or to stdout when output is "" and stdout
// is not a terminal (export and save refuse to fill a terminal with binary).
func saveArchive(ctx context.Context, e *env, output string, open func(c *client.Client) (io.ReadCloser, error)) error {
	if output == "" {
		if _, isTerm := terminalFd(e.Out); isTerm {
			return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
	}
	var rc io.ReadCloser
	err := e.do(ctx, func(c *client.Client) error {
		var err error
		rc, err = open(c)
		return err
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	if output == "" {
		_, err = io.Copy(e.Out, rc)
		return err
	}
	return writeFileAtomic(output, rc)
}
