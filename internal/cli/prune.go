package cli

import (
	"fmt"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

func newBuilderCommand(e *env) *cobra.Command {
	b := &cobra.Command{Use: "builder", Short: "Manage builds", Args: noArgs, RunE: showHelp}
	var all, force bool
	prune := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove build cache",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !confirm(e, "WARNING! This will remove all dangling build cache.") {
				return errCancelled
			}
			var rep *build.CachePruneReport
			err := e.do(cmd.Context(), func(c *client.Client) error {
				var err error
				rep, err = c.BuildCachePrune(cmd.Context(), build.CachePruneOptions{All: all})
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
	prune.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	b.AddCommand(prune)
	build := newBuildCommand(e)
	b.AddCommand(build)
	return b
}

// newSystemPruneCommand removes stopped containers, dangling (or, with -a, unused) images and the build
// cache, as docker system prune does (networks and volumes are not Berth's yet).
func newSystemPruneCommand(e *env) *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			images := "all dangling images"
			if all {
				images = "all images without at least one container associated to them"
			}
			warning := "WARNING! This will remove:\n  - all stopped containers\n  - " + images + "\n  - unused build cache\n"
			if !force && !confirm(e, warning) {
				return errCancelled
			}
			var reclaimed uint64
			return e.do(ctx, func(c *client.Client) error {
				ctrs, err := c.ContainerList(ctx, container.ListOptions{All: true})
				if err != nil {
					return err
				}
				var deleted []string
				for _, ct := range ctrs {
					if ct.State == "running" || ct.State == "paused" || ct.State == "restarting" {
						continue
					}
					if err := c.ContainerRemove(ctx, ct.ID, container.RemoveOptions{}); err == nil {
						deleted = append(deleted, ct.ID)
						reclaimed += uint64(max(ct.SizeRw, 0))
					}
				}
				if len(deleted) > 0 {
					fmt.Fprintln(e.Out, "Deleted Containers:")
					for _, id := range deleted {
						fmt.Fprintln(e.Out, id)
					}
					fmt.Fprintln(e.Out)
				}
				f := filters.NewArgs(filters.Arg("dangling", fmt.Sprint(!all)))
				rep, err := c.ImagesPrune(ctx, f)
				if err != nil {
					return err
				}
				if len(rep.ImagesDeleted) > 0 {
					fmt.Fprintln(e.Out, "Deleted Images:")
					printDeleted(e.Out, rep.ImagesDeleted, "untagged: ", "deleted: ")
					fmt.Fprintln(e.Out)
				}
				reclaimed += rep.SpaceReclaimed
				bc, err := c.BuildCachePrune(ctx, build.CachePruneOptions{All: all})
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
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}
