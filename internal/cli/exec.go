package cli

import (
	"context"
	"errors"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

type execOptions struct {
	detach, interactive, tty, privileged bool
	user, workdir, detachKeys            string
	env, envFiles                        []string
}

func newExecCommand(e *env) *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return execInContainer(cmd.Context(), e, o, args[0], args[1:])
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&o.detach, "detach", "d", false, "Detached mode: run command in the background")
	fs.BoolVarP(&o.interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to the command")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	stringsFlag(fs, &o.env, "env", "e", "Set environment variables")
	stringsFlag(fs, &o.envFiles, "env-file", "", "Read in a file of environment variables")
	return cmd
}

// execInContainer is `berth exec`: create the exec, start it attached (or detached), then report the
// process's exit code from the exec's inspect, as docker does.
func execInContainer(ctx context.Context, e *env, o execOptions, ref string, cmd []string) error {
	envs, err := readEnv(o.envFiles, o.env, e.lookup)
	if err != nil {
		return err
	}
	cfg := container.ExecOptions{
		User: o.user, Privileged: o.privileged, Tty: o.tty, Env: envs, WorkingDir: o.workdir, Cmd: cmd,
		DetachKeys: o.detachKeys, AttachStdin: o.interactive && !o.detach,
		AttachStdout: !o.detach, AttachStderr: !o.detach,
	}
	if o.tty {
		cfg.ConsoleSize = terminalSize(e.Out)
	}
	var created container.ExecCreateResponse
	err = e.do(ctx, func(c *client.Client) error {
		var err error
		created, err = c.ContainerExecCreate(ctx, ref, cfg)
		return err
	})
	if err != nil {
		return err
	}
	c, err := e.api()
	if err != nil {
		return err
	}
	if o.detach {
		return c.ContainerExecStart(ctx, created.ID, container.ExecStartOptions{Detach: true, Tty: o.tty})
	}
	resp, err := c.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{Tty: o.tty, ConsoleSize: cfg.ConsoleSize})
	if err != nil {
		return err
	}
	defer resp.Close()
	if o.tty && cfg.AttachStdin {
		defer makeRaw(e.In)()
	}
	var in = e.In
	if !cfg.AttachStdin {
		in = nil
	}
	done := pumpStreams(resp, o.tty, in, e.Out, e.Err, o.detachKeys)
	if o.tty {
		defer watchTerminalSize(ctx, e.Out, func(ctx context.Context, h, w uint) error {
			return c.ContainerExecResize(ctx, created.ID, container.ResizeOptions{Height: h, Width: w})
		})()
	}
	if err := <-done; errors.Is(err, errDetached) {
		return nil
	}
	info, err := c.ContainerExecInspect(ctx, created.ID)
	if err != nil {
		return err
	}
	if info.ExitCode != 0 {
		return exitStatus(info.ExitCode)
	}
	return nil
}
