package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-dev/berth/internal/reference"
	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

func newRunCommand(e *env) *cobra.Command {
	var detach, sigProxy bool
	var detachKeys string
	var opts *containerOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  runArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContainer(cmd.Context(), e, opts, args[0], args[1:], detach, sigProxy, detachKeys)
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&detach, "detach", "d", false, "Run container in background and print container ID")
	fs.BoolVar(&sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	opts = addContainerFlags(fs)
	return cmd
}

func newCreateCommand(e *env) *cobra.Command {
	var opts *containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  runArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := createContainer(cmd.Context(), e, opts, args[0], args[1:])
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Out, id)
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	opts = addContainerFlags(cmd.Flags())
	return cmd
}

// runArgs is minArgs(1) with docker's exit code for run/create usage errors (125).
func runArgs(cmd *cobra.Command, args []string) error {
	if len(args) >= 1 {
		return nil
	}
	err := argsError(cmd, "requires at least 1 argument")
	err.(*StatusError).StatusCode = 125
	return err
}

// runError formats an engine or validation failure of run/create: exit 125, docker's wording.
func runError(cmd string, err error) error {
	return &StatusError{
		Status:     fmt.Sprintf("berth: %s\n\nRun 'berth %s --help' for more information", err, cmd),
		StatusCode: 125,
	}
}

// createContainer converts flags and creates the container, printing the daemon's warnings.
func createContainer(ctx context.Context, e *env, opts *containerOptions, image string, args []string) (string, error) {
	req, err := opts.toConfig(image, args, e.lookup)
	if err != nil {
		return "", runError("create", err)
	}
	return createFromRequest(ctx, e, req, "create")
}

func createFromRequest(ctx context.Context, e *env, req *createRequest, cmdName string) (string, error) {
	var resp container.CreateResponse
	create := func() error {
		return e.do(ctx, func(c *client.Client) error {
			var err error
			resp, err = c.ContainerCreate(ctx, req.Config, req.HostConfig, req.Networking, nil, req.Name)
			return err
		})
	}
	var err error
	if req.Pull == "always" {
		err = e.pull(ctx, req.Config.Image, "", false, e.Err)
	}
	if err == nil {
		err = create()
	}
	if err != nil && req.Pull == "missing" && cerrdefs.IsNotFound(err) && strings.Contains(err.Error(), "No such image") {
		// As docker does: pull what is missing, then create again.
		ref := req.Config.Image
		if n, perr := reference.ParseNormalizedNamed(ref); perr == nil {
			ref = reference.FamiliarString(reference.TagNameOnly(n))
		}
		fmt.Fprintf(e.Err, "Unable to find image '%s' locally\n", ref)
		if err = e.pull(ctx, req.Config.Image, "", false, e.Err); err == nil {
			err = create()
		}
	}
	if err != nil {
		return "", runError(cmdName, err)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(e.Err, "WARNING: %s\n", w)
	}
	return resp.ID, nil
}

// runContainer is `berth run`: the hot path, kept to create, attach, wait, start (four requests) and
// laid out here as that sequence. Attach and wait are set up before start so no output and no exit
// is missed, whatever the container's speed.
func runContainer(ctx context.Context, e *env, opts *containerOptions, image string, args []string, detach, sigProxy bool, detachKeys string) error {
	req, err := opts.toConfig(image, args, e.lookup)
	if err != nil {
		return runError("run", err)
	}
	cfg := req.Config
	if cfg.Tty && req.HostConfig.ConsoleSize == [2]uint{} {
		// The initial size travels with create, so the first output already fits the terminal.
		if size := terminalSize(e.Out); size != nil {
			req.HostConfig.ConsoleSize = *size
		}
	}
	if detach {
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr, cfg.StdinOnce = false, false, false, false
	}
	id, err := createFromRequest(ctx, e, req, "run")
	if err != nil {
		return err
	}
	c, err := e.api()
	if err != nil {
		return runError("run", err)
	}
	if detach {
		if err := c.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
			return runStartError(err)
		}
		fmt.Fprintln(e.Out, id)
		return nil
	}

	// 1. Attach before start so the first bytes of output are not lost.
	var streamDone <-chan error
	if cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr {
		resp, err := c.ContainerAttach(ctx, id, container.AttachOptions{
			Stream: true, Stdin: cfg.AttachStdin, Stdout: cfg.AttachStdout, Stderr: cfg.AttachStderr,
			DetachKeys: detachKeys,
		})
		if err != nil {
			return runError("run", err)
		}
		defer resp.Close()
		if cfg.Tty && cfg.AttachStdin {
			restore := makeRaw(e.In)
			defer restore()
		}
		var in io.Reader
		if cfg.AttachStdin {
			in = e.In
		}
		streamDone = pumpStreams(resp, cfg.Tty, in, e.Out, e.Err, detachKeys)
	}

	// 2. Wait before start: "next-exit" cannot miss an exit that happens later, and "removed" (for --rm)
	// returns only once the daemon has removed the container, so a following `ps -a` does not see it.
	cond := container.WaitConditionNextExit
	if req.HostConfig.AutoRemove {
		cond = container.WaitConditionRemoved
	}
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	statusCh, waitErrCh := c.ContainerWait(waitCtx, id, cond)

	// 3. Start. Without --rm a container that failed to start stays created, as with docker.
	if err := c.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return runStartError(err)
	}
	if cfg.Tty {
		defer watchTerminalSize(ctx, e.Out, func(ctx context.Context, h, w uint) error {
			return c.ContainerResize(ctx, id, container.ResizeOptions{Height: h, Width: w})
		})()
	} else if sigProxy {
		stop := proxySignals(ctx, c, id)
		defer stop()
	}

	// 4. Drain output, then report the exit code.
	if streamDone != nil {
		if err := <-streamDone; errors.Is(err, errDetached) {
			return nil // the container keeps running
		}
	}
	return waitResult(statusCh, waitErrCh)
}

func waitResult(statusCh <-chan container.WaitResponse, errCh <-chan error) error {
	select {
	case st := <-statusCh:
		if st.Error != nil && st.Error.Message != "" {
			return &StatusError{Status: "berth: Error waiting for container: " + st.Error.Message, StatusCode: 125}
		}
		if st.StatusCode != 0 {
			return exitStatus(int(st.StatusCode))
		}
		return nil
	case err := <-errCh:
		return &StatusError{Status: "berth: Error waiting for container: " + err.Error(), StatusCode: 125}
	}
}
