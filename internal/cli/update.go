package cli

import (
	"errors"
	"fmt"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

func newUpdateCommand(e *env) *cobra.Command {
	var (
		memory, memRes         memBytes
		memSwap                memSwapBytes
		cpus                   nanoCPUs
		shares, period, quota  int64
		cpusetCpus, cpusetMems string
		pids                   optionalInt
		blkio                  uint16
		restart                string
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().NFlag() == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			u := container.UpdateConfig{Resources: container.Resources{
				Memory: int64(memory), MemorySwap: int64(memSwap), MemoryReservation: int64(memRes),
				NanoCPUs: int64(cpus), CPUShares: shares, CPUPeriod: period, CPUQuota: quota,
				CpusetCpus: cpusetCpus, CpusetMems: cpusetMems, BlkioWeight: blkio,
			}}
			if pids.set {
				p := pids.v
				u.PidsLimit = &p
			}
			if cmd.Flags().Changed("restart") {
				p, err := parseRestartPolicy(restart)
				if err != nil {
					return err
				}
				u.RestartPolicy = p
			}
			ctx := cmd.Context()
			var warnings []string
			failed := forEach(ctx, e, args, func(c *client.Client, name string) error {
				resp, err := c.ContainerUpdate(ctx, name, u)
				warnings = append(warnings, resp.Warnings...)
				return err
			})
			for _, w := range warnings {
				fmt.Fprintln(e.Err, w)
			}
			return silentFailure(failed)
		},
	}
	fs := cmd.Flags()
	fs.Uint16Var(&blkio, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.Int64Var(&period, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&quota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64VarP(&shares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&cpus, "cpus", "Number of CPUs")
	fs.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.VarP(&memory, "memory", "m", "Memory limit")
	fs.Var(&memRes, "memory-reservation", "Memory soft limit")
	fs.Var(&memSwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fs.Var(&pids, "pids-limit", "Tune container pids limit (set -1 for unlimited)")
	fs.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}
