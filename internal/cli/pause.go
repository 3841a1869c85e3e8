package cli

import (
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

// lifecycleCommands are the container commands of pause.go, top.go, stats.go, update.go and port.go;
// root.go adds them both at the top level and under `container`.
var lifecycleCommands = []func(*env) *cobra.Command{
	newPauseCommand, newUnpauseCommand, newTopCommand, newStatsCommand, newUpdateCommand, newPortCommand,
}

func newPauseCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return silentFailure(forEach(ctx, e, args, func(c *client.Client, name string) error {
				return c.ContainerPause(ctx, name)
			}))
		},
	}
}

func newUnpauseCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return silentFailure(forEach(ctx, e, args, func(c *client.Client, name string) error {
				return c.ContainerUnpause(ctx, name)
			}))
		},
	}
}
