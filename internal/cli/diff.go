package cli

import (
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

func newDiffCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var changes []container.FilesystemChange
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				changes, err = c.ContainerDiff(ctx, args[0])
				return err
			})
			if err != nil {
				return err
			}
			for _, ch := range changes {
				fmt.Fprintf(e.Out, "%s %s\n", ch.Kind, ch.Path)
			}
			return nil
		},
	}
}
