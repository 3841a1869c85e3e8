package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

const (
	psDefaultFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
	psSizeColumn    = "\t{{.Size}}"
)

type psOptions struct {
	all, quiet, noTrunc, latest, size bool
	last                              int
	filters                           []string
	format                            string
}

func newPsCommand(e *env) *cobra.Command {
	var o psOptions
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPs(cmd, e, &o)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&o.all, "all", "a", false, "Show all containers (default shows just running)")
	fs.StringArrayVarP(&o.filters, "filter", "f", nil, "Filter output based on conditions provided")
	fs.StringVar(&o.format, "format", "", "Format output using a custom template")
	fs.IntVarP(&o.last, "last", "n", -1, "Show n last created containers (includes all states)")
	fs.BoolVarP(&o.latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fs.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "Only display container IDs")
	fs.BoolVarP(&o.size, "size", "s", false, "Display total file sizes")
	return cmd
}

// parseFilters reads repeated `-f key=value` into the API's filter set.
func parseFilters(in []string) (filters.Args, error) {
	args := filters.NewArgs()
	for _, f := range in {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return args, fmt.Errorf("bad format of filter (expected name=value)")
		}
		args.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
	return args, nil
}

func runPs(cmd *cobra.Command, e *env, o *psOptions) error {
	ctx := cmd.Context()
	f, err := parseFilters(o.filters)
	if err != nil {
		return err
	}
	opts := container.ListOptions{All: o.all, Size: o.size, Filters: f}
	if o.latest {
		// The API has no "latest": it is the newest one, limit 1.
		opts.Limit, opts.All = 1, true
	}
	if o.last > 0 {
		opts.Limit, opts.All = o.last, true
	}
	format := o.format
	if o.quiet && format == "" {
		format = "{{.ID}}"
	}
	if format == "" || format == "table" {
		format = psDefaultFormat
		if o.size {
			format += psSizeColumn
		}
	}
	if strings.Contains(format, ".Size") {
		opts.Size = true
	}
	var list []container.Summary
	err = e.do(ctx, func(c *client.Client) error {
		var err error
		list, err = c.ContainerList(ctx, opts)
		return err
	})
	if err != nil {
		return err
	}
	now := time.Now()
	rows := make([]any, 0, len(list))
	for i := range list {
		s := &list[i]
		if s.Status == "" {
			// A daemon that leaves Status to the client: derive it from the full state.
			if c, err := e.api(); err == nil {
				if info, err := c.ContainerInspect(ctx, s.ID); err == nil {
					s.Status = containerStatus(info.State, now)
				}
			}
		}
		rows = append(rows, psRow{c: s, trunc: !o.noTrunc, now: now})
	}
	return renderRows(e.Out, format, psDefaultFormat, psRow{hdr: true}, rows)
}

// psRow is one container as docker's ps templates see it: every field a string, computed on demand.
// hdr makes every field return its column title instead, so one template renders the header too.
type psRow struct {
	c     *container.Summary
	trunc bool
	hdr   bool
	now   time.Time
}

// ID is the container ID, 12 characters unless --no-trunc.
func (r psRow) ID() string {
	if r.hdr {
		return "CONTAINER ID"
	}
	if r.trunc {
		return truncateID(r.c.ID)
	}
	return r.c.ID
}

// Image is the image the container was created from, an ID shortened like any other.
func (r psRow) Image() string {
	if r.hdr {
		return "IMAGE"
	}
	if r.c.Image == "" {
		return "<no image>"
	}
	if r.trunc && (strings.HasPrefix(r.c.Image, "sha256:") || r.c.Image == r.c.ImageID) {
		return truncateID(r.c.Image)
	}
	return r.c.Image
}

// Command is the quoted command line, shortened to 20 characters unless --no-trunc.
func (r psRow) Command() string {
	if r.hdr {
		return "COMMAND"
	}
	cmd := r.c.Command
	if r.trunc {
		cmd = ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

// CreatedAt is the creation time in Go's default time format, as docker prints it.
func (r psRow) CreatedAt() string {
	if r.hdr {
		return "CREATED AT"
	}
	return time.Unix(r.c.Created, 0).String()
}

// RunningFor is the age of the container ("3 minutes ago").
func (r psRow) RunningFor() string {
	if r.hdr {
		return "CREATED"
	}
	return humanSince(time.Unix(r.c.Created, 0), r.now)
}

// Ports lists published and exposed ports ("0.0.0.0:8080->80/tcp, 443/tcp").
func (r psRow) Ports() string {
	if r.hdr {
		return "PORTS"
	}
	return formatPorts(r.c.Ports)
}

// State is the one-word state (running, exited, ...).
func (r psRow) State() string {
	if r.hdr {
		return "STATE"
	}
	return string(r.c.State)
}

// Status is the human status ("Up 3 seconds").
func (r psRow) Status() string {
	if r.hdr {
		return "STATUS"
	}
	return r.c.Status
}

// Size is the writable layer size and, in brackets, the whole filesystem's.
func (r psRow) Size() string {
	if r.hdr {
		return "SIZE"
	}
	s := units.HumanSizeWithPrecision(float64(r.c.SizeRw), 3)
	if r.c.SizeRootFs > 0 {
		s += fmt.Sprintf(" (virtual %s)", units.HumanSizeWithPrecision(float64(r.c.SizeRootFs), 3))
	}
	return s
}

// Names are the container's names without the leading slash; links are hidden unless --no-trunc.
func (r psRow) Names() string {
	if r.hdr {
		return "NAMES"
	}
	var names []string
	for _, n := range r.c.Names {
		n = strings.TrimPrefix(n, "/")
		if r.trunc && strings.Contains(n, "/") {
			continue
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// Labels are all labels as k=v, comma-separated and sorted.
func (r psRow) Labels() string {
	if r.hdr {
		return "LABELS"
	}
	return joinLabels(r.c.Labels)
}

// Label is the value of one label.
func (r psRow) Label(name string) string {
	if r.hdr {
		return name
	}
	return r.c.Labels[name]
}

// Mounts names the container's mounts (volume names or host paths).
func (r psRow) Mounts() string {
	if r.hdr {
		return "MOUNTS"
	}
	var m []string
	for _, mp := range r.c.Mounts {
		n := mp.Name
		if n == "" {
			n = mp.Source
		}
		if r.trunc {
			n = ellipsis(n, 15)
		}
		m = append(m, n)
	}
	return strings.Join(m, ",")
}

// Networks names the networks the container is attached to.
func (r psRow) Networks() string {
	if r.hdr {
		return "NETWORKS"
	}
	if r.c.NetworkSettings == nil {
		return ""
	}
	var n []string
	for k := range r.c.NetworkSettings.Networks {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

// LocalVolumes counts the container's volumes on the local driver.
func (r psRow) LocalVolumes() string {
	if r.hdr {
		return "LOCAL VOLUMES"
	}
	n := 0
	for _, m := range r.c.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

// MarshalJSON gives `{{json .}}` docker's shape: every column as a string field.
func (r psRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"Platform": nil, "Command": r.Command(), "CreatedAt": r.CreatedAt(), "ID": r.ID(), "Image": r.Image(),
		"Labels": r.Labels(), "LocalVolumes": r.LocalVolumes(), "Mounts": r.Mounts(), "Names": r.Names(),
		"Networks": r.Networks(), "Ports": r.Ports(), "RunningFor": r.RunningFor(), "Size": r.Size(),
		"State": r.State(), "Status": r.Status(),
	})
}

func joinLabels(m map[string]string) string {
	kv := make([]string, 0, len(m))
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// formatPorts renders port mappings in a stable order: published ones as IP:public->private/proto.
func formatPorts(ports []container.Port) string {
	ps := append([]container.Port(nil), ports...)
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].PrivatePort != ps[j].PrivatePort {
			return ps[i].PrivatePort < ps[j].PrivatePort
		}
		if ps[i].Type != ps[j].Type {
			return ps[i].Type < ps[j].Type
		}
		return ps[i].IP < ps[j].IP
	})
	var out []string
	seen := map[string]bool{}
	for _, p := range ps {
		var s string
		if p.PublicPort != 0 {
			ip := p.IP
			if strings.Contains(ip, ":") {
				ip = "[" + ip + "]"
			}
			s = fmt.Sprintf("%s:%d->%d/%s", ip, p.PublicPort, p.PrivatePort, p.Type)
		} else {
			s = fmt.Sprintf("%d/%s", p.PrivatePort, p.Type)
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return strings.Join(out, ", ")
}
