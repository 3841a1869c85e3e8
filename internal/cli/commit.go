package cli

import (
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

func newCommitCommand(e *env) *cobra.Command {
	var (
		o       container.CommitOptions
		changes []string
	)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if len(args) == 2 {
				o.Reference = args[1]
			}
			o.Changes = changes
			var resp container.CommitResponse
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				resp, err = c.ContainerCommit(ctx, args[0], o)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Out, resp.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	f.StringVarP(&o.Comment, "message", "m", "", "Commit message")
	f.BoolVarP(&o.Pause, "pause", "p", true, "Pause container during commit")
	return cmd
}
