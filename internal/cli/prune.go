package cli

import (
	"fmt"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

func newBuilderCommand(e *env) *cobra.Command {
	b := &cobra.Command{Use: "builder", Short: "Manage builds", Args: noArgs, RunE: showHelp}
	var all, force bool
	var filterFlags []string
	var keep memBytes
	prune := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove build cache",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove all dangling build cache."
			if all {
				warning = "WARNING! This will remove all build cache."
			}
			if !force && !confirm(e, warning) {
				return errCancelled
			}
			var rep *build.CachePruneReport
			err = e.do(cmd.Context(), func(c *client.Client) error {
				var err error
				rep, err = c.BuildCachePrune(cmd.Context(), build.CachePruneOptions{All: all, KeepStorage: int64(keep), Filters: f})
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Out, "Deleted build cache objects: %d\nTotal reclaimed space: %s\n", len(rep.CachesDeleted), units.HumanSize(float64(rep.SpaceReclaimed)))
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused build cache, not just dangling ones")
	prune.Flags().StringArrayVar(&filterFlags, "filter", nil, "Provide filter values (e.g. \"until=24h\")")
	prune.Flags().Var(&keep, "keep-storage", "Amount of disk space to keep for cache")
	prune.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	b.AddCommand(prune)
	build := newBuildCommand(e)
	b.AddCommand(build)
	return b
}

// newContainerPruneCommand removes stopped containers through POST /containers/prune, as docker
// container prune does.
func newContainerPruneCommand(e *env) *cobra.Command {
	var force bool
	var filterFlags []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			if !force && !confirm(e, "WARNING! This will remove all stopped containers.") {
				return errCancelled
			}
			var rep container.PruneReport
			err = e.do(cmd.Context(), func(c *client.Client) error {
				var err error
				rep, err = c.ContainersPrune(cmd.Context(), f)
				return err
			})
			if err != nil {
				return err
			}
			printPrunedContainers(e, rep)
			fmt.Fprintf(e.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&filterFlags, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

func printPrunedContainers(e *env, rep container.PruneReport) {
	if len(rep.ContainersDeleted) == 0 {
		return
	}
	fmt.Fprintln(e.Out, "Deleted Containers:")
	for _, id := range rep.ContainersDeleted {
		fmt.Fprintln(e.Out, id)
	}
	fmt.Fprintln(e.Out)
}

// newSystemPruneCommand removes stopped containers, unused networks, dangling (or, with -a, unused)
// images and the build cache, as docker system prune does (volumes are not pruned here yet).
func newSystemPruneCommand(e *env) *cobra.Command {
	var all, force bool
	var filterFlags []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			images := "all dangling images"
			if all {
				images = "all images without at least one container associated to them"
			}
			warning := "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - " +
				images + "\n  - unused build cache\n"
			if !force && !confirm(e, warning) {
				return errCancelled
			}
			var reclaimed uint64
			return e.do(ctx, func(c *client.Client) error {
				crep, err := c.ContainersPrune(ctx, f)
				if err != nil {
					return err
				}
				printPrunedContainers(e, crep)
				reclaimed += crep.SpaceReclaimed
				nrep, err := c.NetworksPrune(ctx, f)
				if err != nil {
					return err
				}
				if len(nrep.NetworksDeleted) > 0 {
					fmt.Fprintln(e.Out, "Deleted Networks:")
					for _, n := range nrep.NetworksDeleted {
						fmt.Fprintln(e.Out, n)
					}
					fmt.Fprintln(e.Out)
				}
				imgF := f.Clone()
				imgF.Add("dangling", fmt.Sprint(!all))
				rep, err := c.ImagesPrune(ctx, imgF)
				if err != nil {
					return err
				}
				if len(rep.ImagesDeleted) > 0 {
					fmt.Fprintln(e.Out, "Deleted Images:")
					printDeleted(e.Out, rep.ImagesDeleted, "untagged: ", "deleted: ")
					fmt.Fprintln(e.Out)
				}
				reclaimed += rep.SpaceReclaimed
				bc, err := c.BuildCachePrune(ctx, build.CachePruneOptions{All: all, Filters: f})
				if err != nil {
					return err
				}
				if len(bc.CachesDeleted) > 0 {
					fmt.Fprintf(e.Out, "Deleted build cache objects: %d\n\n", len(bc.CachesDeleted))
				}
				reclaimed += bc.SpaceReclaimed
				fmt.Fprintf(e.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(reclaimed)))
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images not just dangling ones")
	cmd.Flags().StringArrayVar(&filterFlags, "filter", nil, "Provide filter values (e.g. \"label=<key>=<value>\")")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
