package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

// newSwarmCommand builds `swarm` with docker's subcommands: init, join, join-token, leave, unlock-key.
func newSwarmCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "swarm", Short: "Manage Swarm", Args: noArgs, RunE: showHelp}
	cmd.AddCommand(newSwarmInitCommand(e), newSwarmJoinCommand(e), newSwarmJoinTokenCommand(e),
		newSwarmLeaveCommand(e), newSwarmUnlockKeyCommand(e))
	return cmd
}

func newSwarmInitCommand(e *env) *cobra.Command {
	var req swarm.InitRequest
	var availability string
	var pools []string
	cmd := &cobra.Command{
		Use:   "init [OPTIONS]",
		Short: "Initialize a swarm",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			req.Availability = swarm.NodeAvailability(strings.ToLower(availability))
			req.DefaultAddrPool = pools
			var id string
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				id, err = c.SwarmInit(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Out, "Swarm initialized: current node (%s) is now a manager.\n\n", id)
			if err := printJoinCommand(ctx, e, "worker"); err != nil {
				return err
			}
			fmt.Fprint(e.Out, "To add a manager to this swarm, run 'berth swarm join-token manager' and follow the instructions.\n\n")
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&req.AdvertiseAddr, "advertise-addr", "", "Advertised address (format: \"<ip|interface>[:port]\")")
	fs.StringVar(&req.ListenAddr, "listen-addr", "0.0.0.0:2377", "Listen address (format: \"<ip|interface>[:port]\")")
	fs.StringVar(&availability, "availability", "active", `Availability of the node ("active", "pause", "drain")`)
	fs.StringSliceVar(&pools, "default-addr-pool", nil, "default address pool in CIDR format")
	fs.Uint32Var(&req.SubnetSize, "default-addr-pool-mask-length", 24, "default address pool subnet mask length")
	fs.Uint32Var(&req.DataPathPort, "data-path-port", 0, "Port number to use for data path traffic (1024 - 49151)")
	return cmd
}

func newSwarmJoinCommand(e *env) *cobra.Command {
	var req swarm.JoinRequest
	var availability string
	cmd := &cobra.Command{
		Use:   "join [OPTIONS] HOST:PORT",
		Short: "Join a swarm as a node and/or manager",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			req.RemoteAddrs = []string{args[0]}
			req.Availability = swarm.NodeAvailability(strings.ToLower(availability))
			var manager bool
			err := e.do(ctx, func(c *client.Client) error {
				if err := c.SwarmJoin(ctx, req); err != nil {
					return err
				}
				info, err := c.Info(ctx)
				manager = err == nil && info.Swarm.ControlAvailable
				return err
			})
			if err != nil {
				return err
			}
			if manager {
				fmt.Fprintln(e.Out, "This node joined a swarm as a manager.")
			} else {
				fmt.Fprintln(e.Out, "This node joined a swarm as a worker.")
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&req.JoinToken, "token", "", "Token for entry into the swarm")
	fs.StringVar(&req.AdvertiseAddr, "advertise-addr", "", "Advertised address (format: \"<ip|interface>[:port]\")")
	fs.StringVar(&req.ListenAddr, "listen-addr", "0.0.0.0:2377", "Listen address (format: \"<ip|interface>[:port]\")")
	fs.StringVar(&availability, "availability", "active", `Availability of the node ("active", "pause", "drain")`)
	return cmd
}

func newSwarmJoinTokenCommand(e *env) *cobra.Command {
	var rotate, quiet bool
	cmd := &cobra.Command{
		Use:   "join-token [OPTIONS] (worker|manager)",
		Short: "Manage join tokens",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			role := args[0]
			if role != "worker" && role != "manager" {
				return fmt.Errorf("unknown role %s", role)
			}
			var sw swarm.Swarm
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				if sw, err = c.SwarmInspect(ctx); err != nil || !rotate {
					return err
				}
				flags := swarm.UpdateFlags{RotateWorkerToken: role == "worker", RotateManagerToken: role == "manager"}
				if err := c.SwarmUpdate(ctx, sw.Version, sw.Spec, flags); err != nil {
					return err
				}
				sw, err = c.SwarmInspect(ctx)
				return err
			})
			if err != nil {
				return err
			}
			token := sw.JoinTokens.Worker
			if role == "manager" {
				token = sw.JoinTokens.Manager
			}
			if quiet {
				fmt.Fprintln(e.Out, token)
				return nil
			}
			if rotate {
				fmt.Fprintf(e.Out, "Successfully rotated %s join token.\n\n", role)
			}
			return printJoinCommand(ctx, e, role)
		},
	}
	cmd.Flags().BoolVar(&rotate, "rotate", false, "Rotate join token")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display token")
	return cmd
}

// printJoinCommand prints the command that joins a node with role to this manager's swarm.
func printJoinCommand(ctx context.Context, e *env, role string) error {
	return e.do(ctx, func(c *client.Client) error {
		sw, err := c.SwarmInspect(ctx)
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		node, _, err := c.NodeInspectWithRaw(ctx, info.Swarm.NodeID)
		if err != nil {
			return err
		}
		token := sw.JoinTokens.Worker
		if role == "manager" {
			token = sw.JoinTokens.Manager
		}
		addr := info.Swarm.NodeAddr
		if node.ManagerStatus != nil {
			addr = node.ManagerStatus.Addr
		}
		fmt.Fprintf(e.Out, "To add a %s to this swarm, run the following command:\n\n    berth swarm join --token %s %s\n\n", role, token, addr)
		return nil
	})
}

func newSwarmLeaveCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "leave [OPTIONS]",
		Short: "Leave the swarm",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := e.do(ctx, func(c *client.Client) error { return c.SwarmLeave(ctx, force) }); err != nil {
				return err
			}
			fmt.Fprintln(e.Out, "Node left the swarm.")
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force this node to leave the swarm, ignoring warnings")
	return cmd
}

func newSwarmUnlockKeyCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "unlock-key [OPTIONS]",
		Short: "Manage the unlock key",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return e.do(ctx, func(c *client.Client) error {
				_, err := c.SwarmGetUnlockKey(ctx)
				return err
			})
		},
	}
}
