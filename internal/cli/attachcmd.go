package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

func newAttachCommand(e *env) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return attachContainer(cmd.Context(), e, args[0], !noStdin, sigProxy, detachKeys)
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// attachContainer is `berth attach`: the running container's streams until it exits (its exit code is
// ours) or the user detaches.
func attachContainer(ctx context.Context, e *env, ref string, withStdin, sigProxy bool, detachKeys string) error {
	var info container.InspectResponse
	err := e.do(ctx, func(c *client.Client) error {
		var err error
		info, err = c.ContainerInspect(ctx, ref)
		return err
	})
	if err != nil {
		return err
	}
	if info.State == nil || !info.State.Running {
		return fmt.Errorf("You cannot attach to a stopped container, start it first")
	}
	if info.State.Paused {
		return fmt.Errorf("You cannot attach to a paused container, unpause it first")
	}
	c, _ := e.api()
	withStdin = withStdin && info.Config.OpenStdin
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	statusCh, errCh := c.ContainerWait(waitCtx, info.ID, container.WaitConditionNextExit)
	resp, err := c.ContainerAttach(ctx, info.ID, container.AttachOptions{Stream: true, Stdin: withStdin, Stdout: true, Stderr: true, DetachKeys: detachKeys})
	if err != nil {
		return err
	}
	defer resp.Close()
	if info.Config.Tty && withStdin {
		defer makeRaw(e.In)()
	}
	in := e.In
	if !withStdin {
		in = nil
	}
	done := pumpStreams(resp, info.Config.Tty, in, e.Out, e.Err, detachKeys)
	if info.Config.Tty {
		defer watchTerminalSize(ctx, e.Out, func(ctx context.Context, h, w uint) error {
			return c.ContainerResize(ctx, info.ID, container.ResizeOptions{Height: h, Width: w})
		})()
	} else if sigProxy {
		defer proxySignals(ctx, c, info.ID)()
	}
	if err := <-done; errors.Is(err, errDetached) {
		return nil
	}
	return waitResult(statusCh, errCh)
}
