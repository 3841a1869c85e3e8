package cli

import (
	"strings"
	"text/tabwriter"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

func newTopCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var resp container.TopResponse
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				resp, err = c.ContainerTop(ctx, args[0], args[1:])
				return err
			})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(e.Out, 20, 1, 3, ' ', 0)
			w.Write([]byte(strings.Join(resp.Titles, "\t") + "\n"))
			for _, p := range resp.Processes {
				w.Write([]byte(strings.Join(p, "\t") + "\n"))
			}
			return w.Flush()
		},
	}
	// ps options follow the container name and are ps's, not ours.
	cmd.Flags().SetInterspersed(false)
	return cmd
}
