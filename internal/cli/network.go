package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

func newNetworkCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks", Args: noArgs, RunE: showHelp}
	cmd.AddCommand(newNetworkCreateCommand(e), newNetworkLsCommand(e), newNetworkInspectCommand(e),
		newNetworkRmCommand(e), newNetworkPruneCommand(e), newNetworkConnectCommand(e), newNetworkDisconnectCommand(e))
	return cmd
}

func newNetworkCreateCommand(e *env) *cobra.Command {
	var driver, subnet, gateway, ipRange string
	var internal, attachable bool
	var labels, opts []string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			o := network.CreateOptions{Driver: driver, Internal: internal, Attachable: attachable,
				Labels: kvMap(labels), Options: kvMap(opts)}
			if subnet != "" || gateway != "" || ipRange != "" {
				if subnet == "" {
					return fmt.Errorf("every ip-range or gateway must have a corresponding subnet")
				}
				o.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: subnet, Gateway: gateway, IPRange: ipRange}}}
			}
			var resp network.CreateResponse
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				resp, err = c.NetworkCreate(ctx, args[0], o)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Out, resp.ID)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	fs.StringVar(&subnet, "subnet", "", "Subnet in CIDR format that represents a network segment")
	fs.StringVar(&gateway, "gateway", "", "IPv4 Gateway for the master subnet")
	fs.StringVar(&ipRange, "ip-range", "", "Allocate container ip from a sub-range")
	fs.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	fs.BoolVar(&attachable, "attachable", false, "Enable manual container attachment")
	fs.StringArrayVar(&labels, "label", nil, "Set metadata on a network")
	fs.StringArrayVarP(&opts, "opt", "o", nil, "Set driver specific options")
	return cmd
}

// kvMap turns key=value flags into a map ("key" alone maps to "").
func kvMap(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

const networkDefaultFormat = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

func newNetworkLsCommand(e *env) *cobra.Command {
	var quiet, noTrunc bool
	var filterFlags []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			var list []network.Summary
			err = e.do(ctx, func(c *client.Client) error {
				var err error
				list, err = c.NetworkList(ctx, network.ListOptions{Filters: f})
				return err
			})
			if err != nil {
				return err
			}
			sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
			if quiet && format == "" {
				format = "{{.ID}}"
			}
			if format == "" || format == "table" {
				format = networkDefaultFormat
			}
			rows := make([]any, len(list))
			for i := range list {
				rows[i] = networkRow{n: &list[i], trunc: !noTrunc}
			}
			return renderRows(e.Out, format, networkDefaultFormat, networkRow{hdr: true}, rows)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&filterFlags, "filter", "f", nil, "Provide filter values (e.g. \"driver=bridge\")")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	return cmd
}

// networkRow is one line of `network ls`, as templates see it.
type networkRow struct {
	n          *network.Summary
	trunc, hdr bool
}

// ID is the network ID, 12 characters unless --no-trunc.
func (r networkRow) ID() string {
	if r.hdr {
		return "NETWORK ID"
	}
	if r.trunc {
		return truncate(r.n.ID, 12)
	}
	return r.n.ID
}

// Name is the network's name.
func (r networkRow) Name() string {
	if r.hdr {
		return "NAME"
	}
	return r.n.Name
}

// Driver is the network's driver.
func (r networkRow) Driver() string {
	if r.hdr {
		return "DRIVER"
	}
	return r.n.Driver
}

// Scope is always local without a cluster.
func (r networkRow) Scope() string {
	if r.hdr {
		return "SCOPE"
	}
	return r.n.Scope
}

// Internal says whether the network is internal.
func (r networkRow) Internal() string {
	if r.hdr {
		return "INTERNAL"
	}
	return fmt.Sprint(r.n.Internal)
}

// Labels are the network's labels as k=v,k=v.
func (r networkRow) Labels() string {
	if r.hdr {
		return "LABELS"
	}
	var kv []string
	for k, v := range r.n.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func newNetworkInspectCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var raws [][]byte
			var typed []network.Inspect
			var errs []string
			for _, name := range args {
				err := e.do(ctx, func(c *client.Client) error {
					n, raw, err := c.NetworkInspectWithRaw(ctx, name, network.InspectOptions{})
					if err == nil {
						typed, raws = append(typed, n), append(raws, raw)
					}
					return err
				})
				if err != nil {
					if cerrdefs.IsNotFound(err) {
						err = fmt.Errorf("Error response from daemon: network %s not found", name)
					}
					errs = append(errs, err.Error())
				}
			}
			if format == "" {
				var buf bytes.Buffer
				if err := json.Indent(&buf, append(append([]byte("["), bytes.Join(raws, []byte(","))...), ']'), "", "    "); err != nil {
					return err
				}
				buf.WriteString("\n")
				if _, err := e.Out.Write(buf.Bytes()); err != nil {
					return err
				}
			} else {
				for _, n := range typed {
					if err := executeTemplate(e.Out, format, n); err != nil {
						return err
					}
				}
			}
			return joinErrors(errs)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	cmd.Flags().BoolP("verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

func newNetworkRmCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return removeEach(e, args, func(name string) error {
				return e.do(ctx, func(c *client.Client) error { return c.NetworkRemove(ctx, name) })
			})
		},
	}
	cmd.Flags().BoolP("force", "f", false, "Do not error if the network does not exist")
	return cmd
}

// removeEach removes each named object with rm, printing the names removed and, at the end, every
// failure, as docker's rm commands do.
func removeEach(e *env, names []string, rm func(name string) error) error {
	var errs []string
	for _, name := range names {
		if err := rm(name); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		fmt.Fprintln(e.Out, name)
	}
	return joinErrors(errs)
}

func newNetworkPruneCommand(e *env) *cobra.Command {
	var force bool
	var filterFlags []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			if !force && !confirm(e, "WARNING! This will remove all custom networks not used by at least one container.") {
				return errCancelled
			}
			var rep network.PruneReport
			err = e.do(ctx, func(c *client.Client) error {
				var err error
				rep, err = c.NetworksPrune(ctx, f)
				return err
			})
			if err != nil {
				return err
			}
			if len(rep.NetworksDeleted) > 0 {
				fmt.Fprintln(e.Out, "Deleted Networks:")
				for _, n := range rep.NetworksDeleted {
					fmt.Fprintln(e.Out, n)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&filterFlags, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

func newNetworkConnectCommand(e *env) *cobra.Command {
	var ip string
	var aliases, links []string
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			es := &network.EndpointSettings{Aliases: aliases, Links: links}
			if ip != "" {
				es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
			}
			return e.do(ctx, func(c *client.Client) error { return c.NetworkConnect(ctx, args[0], args[1], es) })
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	fs.StringArrayVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	fs.StringArrayVar(&links, "link", nil, "Add link to another container")
	return cmd
}

func newNetworkDisconnectCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return e.do(ctx, func(c *client.Client) error { return c.NetworkDisconnect(ctx, args[0], args[1], force) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
