package cli

import (
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
			if output == "" {
				if _, isTerm := terminalFd(e.Out); isTerm {
					return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
			}
			var rc io.ReadCloser
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				rc, err = c.ContainerExport(ctx, args[0])
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
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}
