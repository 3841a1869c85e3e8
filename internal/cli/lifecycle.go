package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

// forEach runs fn for every named container and prints each name that succeeded, the way docker's
// multi-container commands report: successes on stdout, one daemon error per failure on stderr, exit 1.
func forEach(ctx context.Context, e *env, names []string, fn func(*client.Client, string) error) []string {
	var failed []string
	for _, name := range names {
		err := e.do(ctx, func(c *client.Client) error { return fn(c, name) })
		if err != nil {
			fmt.Fprintln(e.Err, err)
			failed = append(failed, name)
			continue
		}
		fmt.Fprintln(e.Out, name)
	}
	return failed
}

func failedError(verb string, failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	return &StatusError{Status: fmt.Sprintf("Error: failed to %s containers: %s", verb, strings.Join(failed, ", ")), StatusCode: 1}
}

// silentFailure exits 1 after per-item errors were already printed.
func silentFailure(failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	return &StatusError{StatusCode: 1}
}

func newStartCommand(e *env) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				return startAttached(ctx, e, args[0], interactive, detachKeys)
			}
			failed := forEach(ctx, e, args, func(c *client.Client, name string) error {
				return c.ContainerStart(ctx, name, container.StartOptions{})
			})
			return failedError("start", failed)
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// startAttached is `start -a`: like run's attach/wait/start sequence, for an existing container.
func startAttached(ctx context.Context, e *env, name string, interactive bool, detachKeys string) error {
	var info container.InspectResponse
	err := e.do(ctx, func(c *client.Client) error {
		var err error
		info, err = c.ContainerInspect(ctx, name)
		return err
	})
	if err != nil {
		return err
	}
	c, _ := e.api()
	withStdin := interactive && info.Config.OpenStdin
	resp, err := c.ContainerAttach(ctx, info.ID, container.AttachOptions{Stream: true, Stdin: withStdin, Stdout: true, Stderr: true, DetachKeys: detachKeys})
	if err != nil {
		return err
	}
	defer resp.Close()
	if info.Config.Tty && withStdin {
		defer makeRaw(e.In)()
	}
	var in = e.In
	if !withStdin {
		in = nil
	}
	done := pumpStreams(resp, info.Config.Tty, in, e.Out, e.Err, detachKeys)
	cond := container.WaitConditionNextExit
	if info.HostConfig != nil && info.HostConfig.AutoRemove {
		cond = container.WaitConditionRemoved
	}
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	statusCh, errCh := c.ContainerWait(waitCtx, info.ID, cond)
	if err := c.ContainerStart(ctx, info.ID, container.StartOptions{}); err != nil {
		return err
	}
	if !info.Config.Tty {
		defer proxySignals(ctx, c, info.ID)()
	} else {
		defer watchTerminalSize(ctx, e.Out, func(ctx context.Context, h, w uint) error {
			return c.ContainerResize(ctx, info.ID, container.ResizeOptions{Height: h, Width: w})
		})()
	}
	if err := <-done; errors.Is(err, errDetached) {
		return nil
	}
	return waitResult(statusCh, errCh)
}

// stopFlags registers stop's and restart's -t/--time and -s/--signal on cmd and returns how to read
// them as the API's options.
func stopFlags(cmd *cobra.Command) func() container.StopOptions {
	var timeout optionalInt
	var sig string
	cmd.Flags().VarP(&timeout, "time", "t", "Seconds to wait before killing the container")
	cmd.Flags().Var(&timeout, "timeout", "Seconds to wait before killing the container")
	_ = cmd.Flags().MarkHidden("timeout")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return func() container.StopOptions {
		opts := container.StopOptions{Signal: sig}
		if timeout.set {
			t := int(timeout.v)
			opts.Timeout = &t
		}
		return opts
	}
}

func newStopCommand(e *env) *cobra.Command {
	var stopOpts func() container.StopOptions
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts := stopOpts()
			return silentFailure(forEach(ctx, e, args, func(c *client.Client, name string) error {
				return c.ContainerStop(ctx, name, opts)
			}))
		},
	}
	stopOpts = stopFlags(cmd)
	return cmd
}

func newRestartCommand(e *env) *cobra.Command {
	var stopOpts func() container.StopOptions
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts := stopOpts()
			return silentFailure(forEach(ctx, e, args, func(c *client.Client, name string) error {
				err := c.ContainerRestart(ctx, name, opts)
				if err == nil || !isMissingEndpoint(err) {
					return err
				}
				// A daemon without /restart: the same thing in two steps.
				if err := c.ContainerStop(ctx, name, opts); err != nil {
					return err
				}
				return c.ContainerStart(ctx, name, container.StartOptions{})
			}))
		},
	}
	stopOpts = stopFlags(cmd)
	return cmd
}

// isMissingEndpoint tells "the daemon has no such route" from "no such container" (both 404).
func isMissingEndpoint(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "page not found") || strings.Contains(m, "not implemented")
}

func newKillCommand(e *env) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return silentFailure(forEach(ctx, e, args, func(c *client.Client, name string) error {
				return c.ContainerKill(ctx, name, sig)
			}))
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func newRmCommand(e *env) *cobra.Command {
	var opts container.RemoveOptions
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return silentFailure(forEach(ctx, e, args, func(c *client.Client, name string) error {
				name = strings.Trim(name, "/")
				if name == "" {
					return errors.New("Container name cannot be empty")
				}
				return c.ContainerRemove(ctx, name, opts)
			}))
		},
	}
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&opts.RemoveVolumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	cmd.Flags().BoolVarP(&opts.RemoveLinks, "link", "l", false, "Remove the specified link")
	return cmd
}

func newWaitCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var failed []string
			for _, name := range args {
				var code int64
				err := e.do(ctx, func(c *client.Client) error {
					statusCh, errCh := c.ContainerWait(ctx, name, "")
					select {
					case st := <-statusCh:
						code = st.StatusCode
						return nil
					case err := <-errCh:
						return err
					}
				})
				if err != nil {
					fmt.Fprintln(e.Err, err)
					failed = append(failed, name)
					continue
				}
				fmt.Fprintln(e.Out, code)
			}
			return silentFailure(failed)
		},
	}
}

func newRenameCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			oldName, newName := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if oldName == "" || newName == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			err := e.do(ctx, func(c *client.Client) error { return c.ContainerRename(ctx, oldName, newName) })
			if err != nil {
				return fmt.Errorf("%w\nError: failed to rename container named %s", err, oldName)
			}
			return nil
		},
	}
}
