package cli

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// clientVersion is the client half of `version`, shaped like docker's for --format users.
type clientVersion struct {
	Version           string
	APIVersion        string `json:"ApiVersion"`
	DefaultAPIVersion string
	GitCommit         string
	GoVersion         string
	Os                string
	Arch              string
}

// versionInfo is what `version --format` templates see: {{.Client.Version}}, {{.Server.Version}}.
type versionInfo struct {
	Client clientVersion
	Server *types.Version
}

func newVersionCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the Berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			v := versionInfo{Client: clientVersion{
				Version: Version, DefaultAPIVersion: defaultAPIVersion, GitCommit: GitCommit,
				GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH,
			}}
			var srv types.Version
			serr := e.do(ctx, func(c *client.Client) error {
				var err error
				srv, err = c.ServerVersion(ctx)
				return err
			})
			if c, err := e.api(); err == nil {
				v.Client.APIVersion = c.ClientVersion()
			}
			if serr == nil {
				v.Server = &srv
			}
			if format != "" {
				if err := executeTemplate(e.Out, format, v); err != nil {
					return err
				}
				return serr
			}
			printVersion(e.Out, v)
			return serr
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func printVersion(w io.Writer, v versionInfo) {
	tw := tabwriter.NewWriter(w, 20, 1, 1, ' ', 0)
	api := v.Client.APIVersion
	if api != v.Client.DefaultAPIVersion {
		api += " (downgraded from " + v.Client.DefaultAPIVersion + ")"
	}
	fmt.Fprintf(tw, "Client:\n Version:\t%s\n API version:\t%s\n Go version:\t%s\n Git commit:\t%s\n OS/Arch:\t%s/%s\n",
		v.Client.Version, api, v.Client.GoVersion, v.Client.GitCommit, v.Client.Os, v.Client.Arch)
	if s := v.Server; s != nil {
		name := ""
		if s.Platform.Name != "" {
			name = " " + s.Platform.Name
		}
		fmt.Fprintf(tw, "\nServer:%s\n Engine:\n  Version:\t%s\n  API version:\t%s (minimum version %s)\n  Go version:\t%s\n  Git commit:\t%s\n  Built:\t%s\n  OS/Arch:\t%s/%s\n  Experimental:\t%t\n",
			name, s.Version, s.APIVersion, s.MinAPIVersion, s.GoVersion, s.GitCommit, s.BuildTime, s.Os, s.Arch, s.Experimental)
		for _, c := range s.Components {
			if c.Name == "Engine" {
				continue
			}
			fmt.Fprintf(tw, " %s:\n  Version:\t%s\n", c.Name, c.Version)
			keys := make([]string, 0, len(c.Details))
			for k := range c.Details {
				if k != "ApiVersion" && k != "MinAPIVersion" && k != "Os" && k != "Arch" && k != "GoVersion" && k != "BuildTime" && k != "Experimental" && k != "KernelVersion" {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(tw, "  %s:\t%s\n", k, c.Details[k])
			}
		}
	}
	tw.Flush()
}

// infoView is what `info --format` templates see: the daemon's fields at the top level, as in docker.
type infoView struct {
	*system.Info
	ClientInfo clientVersion
}

func newInfoCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var info system.Info
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				info, err = c.Info(ctx)
				return err
			})
			if err != nil {
				return err
			}
			if format != "" {
				return executeTemplate(e.Out, format, infoView{Info: &info, ClientInfo: clientVersion{
					Version: Version, GitCommit: GitCommit, GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH,
				}})
			}
			printInfo(e.Out, &info)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

func printInfo(w io.Writer, i *system.Info) {
	fmt.Fprintf(w, "Client:\n Version:    %s\n\nServer:\n", Version)
	p := func(indent int, k string, v any) { fmt.Fprintf(w, "%s%s: %v\n", strings.Repeat(" ", indent), k, v) }
	p(1, "Containers", i.Containers)
	p(2, "Running", i.ContainersRunning)
	p(2, "Paused", i.ContainersPaused)
	p(2, "Stopped", i.ContainersStopped)
	p(1, "Images", i.Images)
	p(1, "Server Version", i.ServerVersion)
	p(1, "Storage Driver", i.Driver)
	for _, kv := range i.DriverStatus {
		p(2, kv[0], kv[1])
	}
	if i.LoggingDriver != "" {
		p(1, "Logging Driver", i.LoggingDriver)
	}
	p(1, "Cgroup Driver", i.CgroupDriver)
	p(1, "Cgroup Version", i.CgroupVersion)
	if len(i.Runtimes) > 0 {
		names := make([]string, 0, len(i.Runtimes))
		for n := range i.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		p(1, "Runtimes", strings.Join(names, " "))
	}
	if i.DefaultRuntime != "" {
		p(1, "Default Runtime", i.DefaultRuntime)
	}
	p(1, "Kernel Version", i.KernelVersion)
	p(1, "Operating System", i.OperatingSystem)
	p(1, "OSType", i.OSType)
	p(1, "Architecture", i.Architecture)
	p(1, "CPUs", i.NCPU)
	p(1, "Total Memory", units.BytesSize(float64(i.MemTotal)))
	p(1, "Name", i.Name)
	p(1, "ID", i.ID)
	p(1, "Docker Root Dir", i.DockerRootDir)
	p(1, "Debug Mode", i.Debug)
	for _, warn := range i.Warnings {
		fmt.Fprintln(w, warn)
	}
}
