package cli

import (
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/spf13/cobra"
)

func newLogsCommand(e *env) *cobra.Command {
	var o container.LogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// TTY containers have one raw stream; the others are multiplexed. Only inspect can tell.
			var info container.InspectResponse
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				info, err = c.ContainerInspect(ctx, args[0])
				return err
			})
			if err != nil {
				return err
			}
			c, _ := e.api()
			o.ShowStdout, o.ShowStderr = true, true
			// The SDK turns --since/--until values (10m, RFC 3339, unix seconds) into API timestamps.
			rc, err := c.ContainerLogs(ctx, info.ID, o)
			if err != nil {
				return err
			}
			defer rc.Close()
			if info.Config != nil && info.Config.Tty {
				_, err = io.Copy(e.Out, rc)
			} else {
				_, err = stdcopy.StdCopy(e.Out, e.Err, rc)
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&o.Details, "details", false, "Show extra details provided to logs")
	fs.BoolVarP(&o.Follow, "follow", "f", false, "Follow log output")
	fs.StringVar(&o.Since, "since", "", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	fs.StringVarP(&o.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	fs.BoolVarP(&o.Timestamps, "timestamps", "t", false, "Show timestamps")
	fs.StringVar(&o.Until, "until", "", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	return cmd
}
