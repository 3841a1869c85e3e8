package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

// newNodeCommand builds `node` with docker's subcommands: ls, inspect, update, promote, demote, rm.
func newNodeCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Manage Swarm nodes", Args: noArgs, RunE: showHelp}
	cmd.AddCommand(newNodeLsCommand(e), newNodeInspectCommand(e), newNodeUpdateCommand(e),
		newNodeRoleCommand(e, swarm.NodeRoleManager), newNodeRoleCommand(e, swarm.NodeRoleWorker), newNodeRmCommand(e))
	return cmd
}

const nodesDefaultFormat = "table {{.ID}} {{if .Self}}*{{else}} {{end}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}\t{{.EngineVersion}}"

// nodeRow is one line of `node ls`.
type nodeRow struct {
	n    swarm.Node
	self string
	hdr  bool
}

func (r nodeRow) pick(header, v string) string {
	if r.hdr {
		return header
	}
	return v
}

// ID is the node's ID.
func (r nodeRow) ID() string { return r.pick("ID", r.n.ID) }

// Self is whether the node is the one the CLI talks to.
func (r nodeRow) Self() bool { return !r.hdr && r.n.ID == r.self }

// Hostname is the node's host name.
func (r nodeRow) Hostname() string { return r.pick("HOSTNAME", r.n.Description.Hostname) }

// Status is Ready, Down, ...
func (r nodeRow) Status() string { return r.pick("STATUS", capitalize(string(r.n.Status.State))) }

// Availability is Active, Pause or Drain.
func (r nodeRow) Availability() string {
	return r.pick("AVAILABILITY", capitalize(string(r.n.Spec.Availability)))
}

// ManagerStatus is Leader, Reachable or Unreachable for managers, empty for workers.
func (r nodeRow) ManagerStatus() string {
	v := ""
	if ms := r.n.ManagerStatus; ms != nil {
		v = capitalize(string(ms.Reachability))
		if ms.Leader {
			v = "Leader"
		}
	}
	return r.pick("MANAGER STATUS", v)
}

// EngineVersion is the node's engine version.
func (r nodeRow) EngineVersion() string {
	return r.pick("ENGINE VERSION", r.n.Description.Engine.EngineVersion)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// selfID is the node ID of the daemon the CLI talks to ("" outside a swarm).
func selfID(ctx context.Context, c *client.Client) string {
	info, err := c.Info(ctx)
	if err != nil {
		return ""
	}
	return info.Swarm.NodeID
}

// nodeRef resolves "self" to this daemon's node ID, as docker does.
func nodeRef(ctx context.Context, c *client.Client, ref string) string {
	if ref == "self" {
		if id := selfID(ctx, c); id != "" {
			return id
		}
	}
	return ref
}

func newNodeLsCommand(e *env) *cobra.Command {
	var quiet bool
	var filterFlags []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List nodes in the swarm",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			var nodes []swarm.Node
			var self string
			err = e.do(ctx, func(c *client.Client) error {
				var err error
				if nodes, err = c.NodeList(ctx, types.NodeListOptions{Filters: f}); err != nil {
					return err
				}
				self = selfID(ctx, c)
				return nil
			})
			if err != nil {
				return err
			}
			if quiet && format == "" {
				format = "{{.ID}}"
			}
			rows := make([]any, 0, len(nodes))
			for _, n := range nodes {
				rows = append(rows, nodeRow{n: n, self: self})
			}
			return renderRows(e.Out, format, nodesDefaultFormat, nodeRow{hdr: true}, rows)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&filterFlags, "filter", "f", nil, "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	return cmd
}

func newNodeInspectCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] self|NODE [NODE...]",
		Short: "Display detailed information on one or more nodes",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var nodes []swarm.Node
			var errs []string
			err := e.do(ctx, func(c *client.Client) error {
				for _, ref := range args {
					n, _, err := c.NodeInspectWithRaw(ctx, nodeRef(ctx, c, ref))
					if err != nil {
						errs = append(errs, err.Error())
						continue
					}
					nodes = append(nodes, n)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if format == "" {
				b, err := json.MarshalIndent(nodes, "", "    ")
				if err != nil {
					return err
				}
				fmt.Fprintf(e.Out, "%s\n", b)
			} else {
				for _, n := range nodes {
					if err := executeTemplate(e.Out, format, n); err != nil {
						return err
					}
				}
			}
			return joinErrors(errs)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}

// updateNode reads a node, lets change edit its spec, and writes it back at the version read.
func updateNode(ctx context.Context, e *env, ref string, change func(*swarm.NodeSpec)) error {
	return e.do(ctx, func(c *client.Client) error {
		n, _, err := c.NodeInspectWithRaw(ctx, nodeRef(ctx, c, ref))
		if err != nil {
			return err
		}
		change(&n.Spec)
		return c.NodeUpdate(ctx, n.ID, n.Version, n.Spec)
	})
}

func newNodeUpdateCommand(e *env) *cobra.Command {
	var availability, role string
	var labelAdd, labelRm []string
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] NODE",
		Short: "Update a node",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			err := updateNode(cmd.Context(), e, args[0], func(spec *swarm.NodeSpec) {
				if fs.Changed("availability") {
					spec.Availability = swarm.NodeAvailability(strings.ToLower(availability))
				}
				if fs.Changed("role") {
					spec.Role = swarm.NodeRole(strings.ToLower(role))
				}
				if spec.Labels == nil {
					spec.Labels = map[string]string{}
				}
				for _, l := range labelAdd {
					k, v, _ := strings.Cut(l, "=")
					spec.Labels[k] = v
				}
				for _, k := range labelRm {
					delete(spec.Labels, k)
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Out, args[0])
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&availability, "availability", "", `Availability of the node ("active", "pause", "drain")`)
	fs.StringVar(&role, "role", "", `Role of the node ("worker", "manager")`)
	fs.StringArrayVar(&labelAdd, "label-add", nil, "Add or update a node label (key=value)")
	fs.StringArrayVar(&labelRm, "label-rm", nil, "Remove a node label if exists")
	return cmd
}

// newNodeRoleCommand builds `node promote` (role manager) or `node demote` (role worker).
func newNodeRoleCommand(e *env, role swarm.NodeRole) *cobra.Command {
	use, short := "promote NODE [NODE...]", "Promote one or more nodes to manager in the swarm"
	if role == swarm.NodeRoleWorker {
		use, short = "demote NODE [NODE...]", "Demote one or more nodes from manager in the swarm"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []string
			for _, ref := range args {
				already := false
				err := updateNode(cmd.Context(), e, ref, func(spec *swarm.NodeSpec) {
					already = spec.Role == role
					spec.Role = role
				})
				switch {
				case err != nil:
					errs = append(errs, err.Error())
				case role == swarm.NodeRoleManager && already:
					fmt.Fprintf(e.Out, "Node %s is already a manager.\n", ref)
				case role == swarm.NodeRoleManager:
					fmt.Fprintf(e.Out, "Node %s promoted to a manager in the swarm.\n", ref)
				case already:
					fmt.Fprintf(e.Out, "Node %s is already a worker.\n", ref)
				default:
					fmt.Fprintf(e.Out, "Manager %s demoted in the swarm.\n", ref)
				}
			}
			return joinErrors(errs)
		},
	}
}

func newNodeRmCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] NODE [NODE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more nodes from the swarm",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var errs []string
			for _, ref := range args {
				err := e.do(ctx, func(c *client.Client) error {
					return c.NodeRemove(ctx, nodeRef(ctx, c, ref), types.NodeRemoveOptions{Force: force})
				})
				if err != nil {
					errs = append(errs, err.Error())
					continue
				}
				fmt.Fprintln(e.Out, ref)
			}
			return joinErrors(errs)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force remove a node from the swarm")
	return cmd
}
