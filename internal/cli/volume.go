package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// newVolumeCommand builds `volume` with docker's subcommands: create, ls, inspect, rm, prune.
func newVolumeCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes", Args: noArgs, RunE: showHelp}
	cmd.AddCommand(newVolumeCreateCommand(e), newVolumeLsCommand(e), newInspectCommand(e, "volume"),
		newVolumeRmCommand(e), newVolumePruneCommand(e))
	return cmd
}

// keyValues turns repeated key=value flags into a map; a bare key gets an empty value, as in docker.
func keyValues(in []string) map[string]string {
	out := map[string]string{}
	for _, kv := range in {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

func newVolumeCreateCommand(e *env) *cobra.Command {
	var name, driver string
	var opts, labels []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return fmt.Errorf("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			ctx := cmd.Context()
			var v volume.Volume
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				v, err = c.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: driver, DriverOpts: keyValues(opts), Labels: keyValues(labels)})
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Out, v.Name)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	fs.StringArrayVar(&labels, "label", nil, "Set metadata for a volume")
	fs.StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	fs.StringVar(&name, "name", "", "Specify volume name")
	_ = fs.MarkHidden("name")
	return cmd
}

const volumesDefaultFormat = "table {{.Driver}}\t{{.Name}}"

// volumeRow is one line of `volume ls`.
type volumeRow struct {
	v   *volume.Volume
	hdr bool
}

// Name is the volume's name.
func (r volumeRow) Name() string {
	if r.hdr {
		return "VOLUME NAME"
	}
	return r.v.Name
}

// Driver is the volume's driver.
func (r volumeRow) Driver() string {
	if r.hdr {
		return "DRIVER"
	}
	return r.v.Driver
}

// Scope is local or global.
func (r volumeRow) Scope() string {
	if r.hdr {
		return "SCOPE"
	}
	return r.v.Scope
}

// Mountpoint is where the volume lives on the host.
func (r volumeRow) Mountpoint() string {
	if r.hdr {
		return "MOUNTPOINT"
	}
	return r.v.Mountpoint
}

// Labels are the volume's labels as k=v,k=v.
func (r volumeRow) Labels() string {
	if r.hdr {
		return "LABELS"
	}
	var out []string
	for k, v := range r.v.Labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// Label returns one label's value.
func (r volumeRow) Label(name string) string {
	if r.hdr {
		return strings.ToUpper(name)
	}
	return r.v.Labels[name]
}

func newVolumeLsCommand(e *env) *cobra.Command {
	var quiet bool
	var filterFlags []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			var list volume.ListResponse
			err = e.do(ctx, func(c *client.Client) error {
				var err error
				list, err = c.VolumeList(ctx, volume.ListOptions{Filters: f})
				return err
			})
			if err != nil {
				return err
			}
			if quiet && format == "" {
				format = "{{.Name}}"
			}
			if format == "" || format == "table" {
				format = volumesDefaultFormat
			}
			rows := make([]any, 0, len(list.Volumes))
			for _, v := range list.Volumes {
				rows = append(rows, volumeRow{v: v})
			}
			return renderRows(e.Out, format, volumesDefaultFormat, volumeRow{hdr: true}, rows)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&filterFlags, "filter", "f", nil, "Provide filter values (e.g. \"dangling=true\")")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	return cmd
}

func newVolumeRmCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return removeEach(e, args, func(name string) error {
				return e.do(ctx, func(c *client.Client) error { return c.VolumeRemove(ctx, name, force) })
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func newVolumePruneCommand(e *env) *cobra.Command {
	var all, force bool
	var filterFlags []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all {
				f.Add("all", "true")
				warning = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !force && !confirm(e, warning) {
				return errCancelled
			}
			var rep volume.PruneReport
			err = e.do(ctx, func(c *client.Client) error {
				var err error
				rep, err = c.VolumesPrune(ctx, f)
				return err
			})
			if err != nil {
				return err
			}
			if len(rep.VolumesDeleted) > 0 {
				fmt.Fprintln(e.Out, "Deleted Volumes:")
				for _, v := range rep.VolumesDeleted {
					fmt.Fprintln(e.Out, v)
				}
				fmt.Fprintln(e.Out)
			}
			fmt.Fprintf(e.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	cmd.Flags().StringArrayVar(&filterFlags, "filter", nil, "Provide filter values (e.g. \"label=<label>\")")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
