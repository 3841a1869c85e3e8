package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

func newStatsCommand(e *env) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			names := args
			if len(names) == 0 {
				err := e.do(ctx, func(c *client.Client) error {
					list, err := c.ContainerList(ctx, container.ListOptions{All: all})
					for _, s := range list {
						names = append(names, s.ID)
					}
					return err
				})
				if err != nil {
					return err
				}
			} else if err := e.do(ctx, func(c *client.Client) error { _, err := c.Ping(ctx); return err }); err != nil {
				return err
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			rows := make([]*statsRow, len(names))
			for i, n := range names {
				rows[i] = &statsRow{statsView: statsView{container: n, noTrunc: noTrunc}}
			}
			if noStream {
				var wg sync.WaitGroup
				for _, r := range rows {
					wg.Add(1)
					go func(r *statsRow) { defer wg.Done(); r.collect(ctx, c, false) }(r)
				}
				wg.Wait()
				if err := renderStats(e.Out, format, rows); err != nil {
					return err
				}
				return statsErrors(e, rows)
			}
			for _, r := range rows {
				go r.collect(ctx, c, true)
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
				io.WriteString(e.Out, "\033[2J\033[H")
				if err := renderStats(e.Out, format, rows); err != nil {
					return err
				}
			}
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

func statsErrors(e *env, rows []*statsRow) error {
	var errs []string
	for _, r := range rows {
		if r.err != nil {
			errs = append(errs, r.err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func renderStats(w io.Writer, format string, rows []*statsRow) error {
	list := make([]any, 0, len(rows))
	for _, r := range rows {
		r.mu.Lock()
		if r.err == nil {
			v := r.statsView
			list = append(list, &v)
		}
		r.mu.Unlock()
	}
	return renderRows(w, format, defaultStatsFormat, statsHeader{}, list)
}

// statsRow is one container's line, updated by its collector and read by the renderer.
type statsRow struct {
	mu  sync.Mutex
	err error
	statsView
}

// statsView is what a row shows; the renderer gets a copy.
type statsView struct {
	container string // as the user named it
	noTrunc   bool

	id, name                       string
	cpu, mem, memLimit, memPerc    float64
	netRx, netTx, blkRead, blkWrit float64
	pids                           uint64
}

// collect reads the container's stats stream (or one sample) into r.
func (r *statsRow) collect(ctx context.Context, c *client.Client, stream bool) {
	resp, err := c.ContainerStats(ctx, r.container, stream)
	if err != nil {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		return
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var s container.StatsResponse
		if err := dec.Decode(&s); err != nil {
			return
		}
		r.mu.Lock()
		r.update(&s)
		r.mu.Unlock()
		if !stream {
			return
		}
	}
}

// update computes the displayed values the way docker's CLI does. r.mu is held.
func (r *statsView) update(s *container.StatsResponse) {
	r.id, r.name = s.ID, strings.TrimPrefix(s.Name, "/")
	r.cpu = 0
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		r.cpu = cpuDelta / sysDelta * online * 100
	}
	usage := s.MemoryStats.Usage
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && v < usage {
		usage -= v
	} else if v := s.MemoryStats.Stats["inactive_file"]; v < usage {
		usage -= v
	}
	r.mem, r.memLimit, r.memPerc = float64(usage), float64(s.MemoryStats.Limit), 0
	if r.memLimit != 0 {
		r.memPerc = r.mem / r.memLimit * 100
	}
	r.netRx, r.netTx = 0, 0
	for _, n := range s.Networks {
		r.netRx += float64(n.RxBytes)
		r.netTx += float64(n.TxBytes)
	}
	r.blkRead, r.blkWrit = 0, 0
	for _, b := range s.BlkioStats.IoServiceBytesRecursive {
		if b.Op == "" {
			continue
		}
		switch b.Op[0] {
		case 'r', 'R':
			r.blkRead += float64(b.Value)
		case 'w', 'W':
			r.blkWrit += float64(b.Value)
		}
	}
	r.pids = s.PidsStats.Current
}

// Container is the name or ID as given on the command line.
func (r *statsView) Container() string { return r.container }

// ID is the container's ID, short unless --no-trunc.
func (r *statsView) ID() string {
	if r.noTrunc {
		return r.id
	}
	return truncateID(r.id)
}

// Name is the container's name without the leading slash.
func (r *statsView) Name() string { return r.name }

// CPUPerc is the CPU use since the previous sample, as a share of one CPU times the CPU count.
func (r *statsView) CPUPerc() string { return fmt.Sprintf("%.2f%%", r.cpu) }

// MemUsage is usage (without reclaimable cache) and the limit.
func (r *statsView) MemUsage() string {
	return units.BytesSize(r.mem) + " / " + units.BytesSize(r.memLimit)
}

// MemPerc is usage as a share of the limit.
func (r *statsView) MemPerc() string { return fmt.Sprintf("%.2f%%", r.memPerc) }

// NetIO is bytes received and sent.
func (r *statsView) NetIO() string {
	return units.HumanSizeWithPrecision(r.netRx, 3) + " / " + units.HumanSizeWithPrecision(r.netTx, 3)
}

// BlockIO is bytes read and written.
func (r *statsView) BlockIO() string {
	return units.HumanSizeWithPrecision(r.blkRead, 3) + " / " + units.HumanSizeWithPrecision(r.blkWrit, 3)
}

// PIDs is the number of processes and threads.
func (r *statsView) PIDs() string { return fmt.Sprint(r.pids) }

// MarshalJSON gives `--format json` docker's field names.
func (r *statsView) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"BlockIO": r.BlockIO(), "CPUPerc": r.CPUPerc(), "Container": r.Container(), "ID": r.ID(),
		"MemPerc": r.MemPerc(), "MemUsage": r.MemUsage(), "Name": r.Name(), "NetIO": r.NetIO(), "PIDs": r.PIDs(),
	})
}

// statsHeader renders every column as its title; its methods mirror statsView's.
type statsHeader struct{}

// Container is the CONTAINER column's title.
func (statsHeader) Container() string { return "CONTAINER" }

// ID is the CONTAINER ID column's title.
func (statsHeader) ID() string { return "CONTAINER ID" }

// Name is the NAME column's title.
func (statsHeader) Name() string { return "NAME" }

// CPUPerc is the CPU % column's title.
func (statsHeader) CPUPerc() string { return "CPU %" }

// MemUsage is the MEM USAGE / LIMIT column's title.
func (statsHeader) MemUsage() string { return "MEM USAGE / LIMIT" }

// MemPerc is the MEM % column's title.
func (statsHeader) MemPerc() string { return "MEM %" }

// NetIO is the NET I/O column's title.
func (statsHeader) NetIO() string { return "NET I/O" }

// BlockIO is the BLOCK I/O column's title.
func (statsHeader) BlockIO() string { return "BLOCK I/O" }

// PIDs is the PIDS column's title.
func (statsHeader) PIDs() string { return "PIDS" }
