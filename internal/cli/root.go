package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Version is berth's own version, set at link time (-ldflags "-X github.com/berth-dev/berth/internal/cli.Version=...").
var Version = "dev"

// GitCommit is the commit berth was built from, set at link time like Version.
var GitCommit = "unknown"

// Streams are the standard streams a command reads and writes; tests pass buffers.
type Streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// env is what every command shares: the streams, the lazily created engine client and the environment
// used to expand bare `-e KEY`.
type env struct {
	Streams
	global globalOptions
	eng    *engine
	getenv func(string) string
	lookup func(string) (string, bool)
}

// do runs an API call through the engine, falling back to an older API version if the daemon asks.
func (e *env) do(ctx context.Context, fn func(*client.Client) error) error {
	if e.eng == nil {
		e.eng = e.newEngine()
	}
	return e.eng.do(ctx, fn)
}

// newEngine resolves where and how to reach the daemon; nothing is opened until the first call.
func (e *env) newEngine() *engine {
	return &engine{host: resolveHost(e.global.host, e.getenv), tls: func() (*tls.Config, error) { return clientTLS(e.global, e.getenv) }}
}

// api returns the client for calls after the first one, when the version is settled.
func (e *env) api() (*client.Client, error) {
	if e.eng == nil {
		e.eng = e.newEngine()
	}
	return e.eng.client()
}

// Run executes berth with args (without the program name) and returns the process exit code. It is the
// whole program: cmd/berth only passes os.Args and exits with the result.
func Run(ctx context.Context, args []string, s Streams) int {
	e := &env{Streams: s, getenv: os.Getenv, lookup: os.LookupEnv}
	defer func() {
		if e.eng != nil {
			e.eng.close()
		}
	}()
	root := newRootCommand(e)
	global, rest, err := splitGlobalFlags(args)
	if err != nil {
		return exitCode(s.Err, &StatusError{Status: err.Error() + "\n\nRun 'berth --help' for more information", StatusCode: 125})
	}
	e.global = global
	root.SetArgs(rest)
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	err = root.ExecuteContext(ctx)
	return exitCode(s.Err, err)
}

func exitCode(stderr io.Writer, err error) int {
	if err == nil || errors.Is(err, errCancelled) {
		return 0
	}
	var se *StatusError
	if errors.As(err, &se) {
		if se.Status != "" {
			fmt.Fprintln(stderr, se.Status)
		}
		if se.StatusCode == 0 {
			return 1
		}
		return se.StatusCode
	}
	msg := err.Error()
	fmt.Fprintln(stderr, msg)
	return 1
}

func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "berth [OPTIONS] COMMAND [ARG...]",
		Short:         "A self-sufficient runtime for containers",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetVersionTemplate(fmt.Sprintf("Berth version {{.Version}}, build %s\n", GitCommit))
	// Only for help: global flags are taken off the front of the command line by splitGlobalFlags, as
	// docker does, so subcommands keep their own -H (history -H).
	root.Flags().StringP("host", "H", "", "Daemon socket to connect to")
	root.Flags().Bool("tls", false, "Use TLS; implied by --tlsverify")
	root.Flags().String("tlscacert", "", "Trust certs signed only by this CA (default $DOCKER_CERT_PATH/ca.pem)")
	root.Flags().String("tlscert", "", "Path to TLS certificate file (default $DOCKER_CERT_PATH/cert.pem)")
	root.Flags().String("tlskey", "", "Path to TLS key file (default $DOCKER_CERT_PATH/key.pem)")
	root.Flags().Bool("tlsverify", false, "Use TLS and verify the remote (default $DOCKER_TLS_VERIFY)")
	root.Flags().BoolP("version", "v", false, "Print version information and quit")
	root.SetFlagErrorFunc(flagError)

	containerCmds := []func(*env) *cobra.Command{
		newRunCommand, newCreateCommand, newStartCommand, newStopCommand, newKillCommand, newRmCommand,
		newWaitCommand, newRenameCommand, newRestartCommand, newLogsCommand,
	}
	containerCmds = append(containerCmds, lifecycleCommands...)
	containerCmds = append(containerCmds, newExecCommand, newAttachCommand)
	containerCmds = append(containerCmds, filesystemCommands...)
	imageCmds := []func(*env) *cobra.Command{
		newImportCommand, newLoadCommand, newSaveCommand, newTagCommand, newHistoryCommand, newBuildCommand,
		newPullCommand, newPushCommand,
	}
	// Top-level shortcuts, as docker has them.
	for _, f := range containerCmds {
		root.AddCommand(f(e))
	}
	for _, f := range imageCmds {
		root.AddCommand(f(e))
	}
	root.AddCommand(newPsCommand(e), newImagesCommand(e), newRmiCommand(e), newInspectCommand(e, ""),
		newVersionCommand(e), newInfoCommand(e), newLoginCommand(e), newLogoutCommand(e))

	// Management groups.
	ctr := &cobra.Command{Use: "container", Short: "Manage containers", Args: noArgs, RunE: showHelp}
	for _, f := range containerCmds {
		ctr.AddCommand(f(e))
	}
	ls := newPsCommand(e)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"ps", "list"}
	ctr.AddCommand(ls, newInspectCommand(e, "container"), newContainerPruneCommand(e))

	img := &cobra.Command{Use: "image", Short: "Manage images", Args: noArgs, RunE: showHelp}
	for _, f := range imageCmds {
		img.AddCommand(f(e))
	}
	ils := newImagesCommand(e)
	ils.Use, ils.Aliases = "ls [OPTIONS] [REPOSITORY[:TAG]]", []string{"list"}
	irm := newRmiCommand(e)
	irm.Use, irm.Aliases = "rm [OPTIONS] IMAGE [IMAGE...]", []string{"remove", "rmi"}
	img.AddCommand(ils, irm, newInspectCommand(e, "image"), newImagePruneCommand(e))
	root.AddCommand(ctr, img, newNetworkCommand(e), newVolumeCommand(e), newSwarmCommand(e), newNodeCommand(e), newServiceCommand(e))

	sys := &cobra.Command{Use: "system", Short: "Manage Berth", Args: noArgs, RunE: showHelp}
	sysInfo := newInfoCommand(e)
	sys.AddCommand(sysInfo, newSystemPruneCommand(e))
	root.AddCommand(newBuilderCommand(e))
	root.AddCommand(newEventsCommand(e))
	root.AddCommand(newRegistryCommand(e))
	sys.AddCommand(newEventsCommand(e))
	root.AddCommand(sys)

	walk(root, func(c *cobra.Command) {
		c.DisableFlagsInUseLine = true
		c.SilenceErrors = true
		c.SilenceUsage = true
		c.Flags().SortFlags = false
	})
	return root
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

func showHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// flagError gives docker's usage error: the problem, the usage line, a pointer to --help, and exit 125
// (docker uses 125 for every flag error, which is what scripts check for `run`).
func flagError(cmd *cobra.Command, err error) error {
	return &StatusError{
		Status:     fmt.Sprintf("%s\n\nUsage:  %s\n\nRun '%s --help' for more information", err, cmd.UseLine(), cmd.CommandPath()),
		StatusCode: 125,
	}
}

func argsError(cmd *cobra.Command, what string) error {
	return &StatusError{
		Status: fmt.Sprintf("berth: '%s' %s\n\nUsage:  %s\n\nSee '%s --help' for more information",
			cmd.CommandPath(), what, cmd.UseLine(), cmd.CommandPath()),
		StatusCode: 1,
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return &StatusError{Status: fmt.Sprintf("berth: unknown command: %s %s\n\nRun '%s --help' for more information",
			cmd.CommandPath(), args[0], cmd.CommandPath()), StatusCode: 1}
	}
	return argsError(cmd, "accepts no arguments")
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at least %d %s", n, plural(n, "argument")))
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires %d %s", n, plural(n, "argument")))
	}
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= lo && len(args) <= hi {
			return nil
		}
		return argsError(cmd, fmt.Sprintf("requires at least %d and at most %d arguments", lo, hi))
	}
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// stringsFlag registers a repeatable string flag (docker's ListOpts), keeping order and duplicates.
func stringsFlag(fs *pflag.FlagSet, p *[]string, name, short, usage string) {
	fs.StringArrayVarP(p, name, short, nil, usage)
}

// joinErrors prints per-item failures the way docker's multi-target commands do: one line per error.
func joinErrors(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(errs, "\n"))
}
