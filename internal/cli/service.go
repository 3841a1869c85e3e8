package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// newServiceCommand builds `service` with docker's subcommands.
func newServiceCommand(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Manage Swarm services", Args: noArgs, RunE: showHelp}
	cmd.AddCommand(newServiceCreateCommand(e), newServiceLsCommand(e), newServicePsCommand(e), newServiceInspectCommand(e),
		newServiceRmCommand(e), newServiceScaleCommand(e), newServiceUpdateCommand(e), newServiceRollbackCommand(e),
		newServiceLogsCommand(e))
	return cmd
}

// serviceOptions are the spec flags of `service create` and `service update`.
type serviceOptions struct {
	name, mode, image                       string
	replicas                                uint64
	env, labels, constraints, publish, nets []string
	mounts                                  mountList
	restartCondition                        string
	restartMax                              uint64
	restartDelay, stopGrace                 time.Duration
	limitCPU, reserveCPU                    nanoCPUs
	limitMem, reserveMem                    memBytes
	updParallelism                          uint64
	updDelay, updMonitor                    time.Duration
	updFailure, updOrder                    string
	rbParallelism                           uint64
	rbFailure, rbOrder                      string
	user, workdir, hostname                 string
	detach                                  bool
	envRm, labelRm, constraintRm, publishRm []string
	envAdd, labelAdd, constraintAdd, pubAdd []string
	force                                   bool
	args                                    []string
}

func addServiceFlags(fs *pflag.FlagSet, o *serviceOptions, create bool) {
	if create {
		fs.StringVar(&o.name, "name", "", "Service name")
		fs.StringVar(&o.mode, "mode", "replicated", `Service mode ("replicated" or "global")`)
		stringsFlag(fs, &o.env, "env", "e", "Set environment variables")
		stringsFlag(fs, &o.labels, "label", "l", "Service labels")
		stringsFlag(fs, &o.constraints, "constraint", "", "Placement constraints")
		stringsFlag(fs, &o.publish, "publish", "p", "Publish a port as a node port")
		stringsFlag(fs, &o.nets, "network", "", "Network attachments")
		fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the service")
	} else {
		fs.StringVar(&o.image, "image", "", "Service image tag")
		stringsFlag(fs, &o.envAdd, "env-add", "", "Add or update an environment variable")
		stringsFlag(fs, &o.envRm, "env-rm", "", "Remove an environment variable")
		stringsFlag(fs, &o.labelAdd, "label-add", "", "Add or update a service label")
		stringsFlag(fs, &o.labelRm, "label-rm", "", "Remove a label by its key")
		stringsFlag(fs, &o.constraintAdd, "constraint-add", "", "Add or update a placement constraint")
		stringsFlag(fs, &o.constraintRm, "constraint-rm", "", "Remove a constraint")
		stringsFlag(fs, &o.pubAdd, "publish-add", "", "Add or update a published port")
		stringsFlag(fs, &o.publishRm, "publish-rm", "", "Remove a published port by its target port")
		fs.BoolVar(&o.force, "force", false, "Force update even if no changes require it")
		fs.StringArrayVar(&o.args, "args", nil, "Service command args")
	}
	fs.Uint64Var(&o.replicas, "replicas", 0, "Number of tasks")
	fs.StringVar(&o.restartCondition, "restart-condition", "", `Restart when condition is met ("none", "on-failure", "any")`)
	fs.Uint64Var(&o.restartMax, "restart-max-attempts", 0, "Maximum number of restarts before giving up")
	fs.DurationVar(&o.restartDelay, "restart-delay", 0, "Delay between restart attempts")
	fs.DurationVar(&o.stopGrace, "stop-grace-period", 0, "Time to wait before force killing a container")
	fs.Var(&o.limitCPU, "limit-cpu", "Limit CPUs")
	fs.Var(&o.reserveCPU, "reserve-cpu", "Reserve CPUs")
	fs.Var(&o.limitMem, "limit-memory", "Limit Memory")
	fs.Var(&o.reserveMem, "reserve-memory", "Reserve Memory")
	fs.Uint64Var(&o.updParallelism, "update-parallelism", 1, "Maximum number of tasks updated simultaneously (0 to update all at once)")
	fs.DurationVar(&o.updDelay, "update-delay", 0, "Delay between updates")
	fs.DurationVar(&o.updMonitor, "update-monitor", 0, "Duration after each task update to monitor for failure")
	fs.StringVar(&o.updFailure, "update-failure-action", "", `Action on update failure ("pause", "continue", "rollback")`)
	fs.StringVar(&o.updOrder, "update-order", "", `Update order ("start-first", "stop-first")`)
	fs.Uint64Var(&o.rbParallelism, "rollback-parallelism", 1, "Maximum number of tasks rolled back simultaneously")
	fs.StringVar(&o.rbFailure, "rollback-failure-action", "", `Action on rollback failure ("pause", "continue")`)
	fs.StringVar(&o.rbOrder, "rollback-order", "", `Rollback order ("start-first", "stop-first")`)
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVar(&o.hostname, "hostname", "", "Container hostname")
	fs.BoolVarP(&o.detach, "detach", "d", false, "Exit immediately instead of waiting for the service to converge")
}

// apply sets the flags the user gave on spec.
func (o *serviceOptions) apply(fs *pflag.FlagSet, spec *swarm.ServiceSpec) error {
	ts := &spec.TaskTemplate
	if ts.ContainerSpec == nil {
		ts.ContainerSpec = &swarm.ContainerSpec{}
	}
	cs := ts.ContainerSpec
	if fs.Changed("image") {
		cs.Image = o.image
	}
	if fs.Changed("args") {
		cs.Args = o.args
	}
	if fs.Changed("user") {
		cs.User = o.user
	}
	if fs.Changed("workdir") {
		cs.Dir = o.workdir
	}
	if fs.Changed("hostname") {
		cs.Hostname = o.hostname
	}
	if fs.Changed("stop-grace-period") {
		d := o.stopGrace
		cs.StopGracePeriod = &d
	}
	cs.Env = editList(cs.Env, append(o.env, o.envAdd...), o.envRm, func(s string) string { k, _, _ := strings.Cut(s, "="); return k })
	if len(o.mounts) > 0 {
		cs.Mounts = append(cs.Mounts, o.mounts...)
	}
	for _, l := range append(o.labels, o.labelAdd...) {
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		k, v, _ := strings.Cut(l, "=")
		spec.Labels[k] = v
	}
	for _, k := range o.labelRm {
		delete(spec.Labels, k)
	}
	if cons := append(o.constraints, o.constraintAdd...); len(cons) > 0 || len(o.constraintRm) > 0 {
		if ts.Placement == nil {
			ts.Placement = &swarm.Placement{}
		}
		ts.Placement.Constraints = editList(ts.Placement.Constraints, cons, o.constraintRm, func(s string) string { return s })
	}
	for _, n := range o.nets {
		ts.Networks = append(ts.Networks, swarm.NetworkAttachmentConfig{Target: n})
	}
	if fs.Changed("replicas") {
		if spec.Mode.Replicated == nil {
			return errors.New("replicas can only be used with replicated mode")
		}
		r := o.replicas
		spec.Mode.Replicated.Replicas = &r
	}
	if fs.Changed("restart-condition") || fs.Changed("restart-max-attempts") || fs.Changed("restart-delay") {
		if ts.RestartPolicy == nil {
			ts.RestartPolicy = &swarm.RestartPolicy{}
		}
		if fs.Changed("restart-condition") {
			ts.RestartPolicy.Condition = swarm.RestartPolicyCondition(o.restartCondition)
		}
		if fs.Changed("restart-max-attempts") {
			n := o.restartMax
			ts.RestartPolicy.MaxAttempts = &n
		}
		if fs.Changed("restart-delay") {
			d := o.restartDelay
			ts.RestartPolicy.Delay = &d
		}
	}
	if fs.Changed("limit-cpu") || fs.Changed("limit-memory") || fs.Changed("reserve-cpu") || fs.Changed("reserve-memory") {
		if ts.Resources == nil {
			ts.Resources = &swarm.ResourceRequirements{}
		}
		if fs.Changed("limit-cpu") || fs.Changed("limit-memory") {
			if ts.Resources.Limits == nil {
				ts.Resources.Limits = &swarm.Limit{}
			}
			if fs.Changed("limit-cpu") {
				ts.Resources.Limits.NanoCPUs = int64(o.limitCPU)
			}
			if fs.Changed("limit-memory") {
				ts.Resources.Limits.MemoryBytes = int64(o.limitMem)
			}
		}
		if fs.Changed("reserve-cpu") || fs.Changed("reserve-memory") {
			if ts.Resources.Reservations == nil {
				ts.Resources.Reservations = &swarm.Resources{}
			}
			if fs.Changed("reserve-cpu") {
				ts.Resources.Reservations.NanoCPUs = int64(o.reserveCPU)
			}
			if fs.Changed("reserve-memory") {
				ts.Resources.Reservations.MemoryBytes = int64(o.reserveMem)
			}
		}
	}
	upd := func(prefix string, cfg **swarm.UpdateConfig, par uint64, failure, order string) {
		changed := false
		for _, f := range []string{"parallelism", "delay", "monitor", "failure-action", "order"} {
			changed = changed || fs.Changed(prefix+"-"+f)
		}
		if !changed {
			return
		}
		if *cfg == nil {
			*cfg = &swarm.UpdateConfig{Parallelism: 1}
		}
		c := *cfg
		if fs.Changed(prefix + "-parallelism") {
			c.Parallelism = par
		}
		if prefix == "update" && fs.Changed("update-delay") {
			c.Delay = o.updDelay
		}
		if prefix == "update" && fs.Changed("update-monitor") {
			c.Monitor = o.updMonitor
		}
		if fs.Changed(prefix + "-failure-action") {
			c.FailureAction = failure
		}
		if fs.Changed(prefix + "-order") {
			c.Order = order
		}
	}
	upd("update", &spec.UpdateConfig, o.updParallelism, o.updFailure, o.updOrder)
	upd("rollback", &spec.RollbackConfig, o.rbParallelism, o.rbFailure, o.rbOrder)
	ports, err := parsePublish(append(o.publish, o.pubAdd...))
	if err != nil {
		return err
	}
	if len(ports) > 0 || len(o.publishRm) > 0 {
		if spec.EndpointSpec == nil {
			spec.EndpointSpec = &swarm.EndpointSpec{}
		}
		var kept []swarm.PortConfig
		for _, p := range spec.EndpointSpec.Ports {
			drop := false
			for _, r := range o.publishRm {
				t, _, _ := strings.Cut(r, "/")
				drop = drop || strconv.Itoa(int(p.TargetPort)) == t
			}
			for _, n := range ports {
				drop = drop || n.TargetPort == p.TargetPort
			}
			if !drop {
				kept = append(kept, p)
			}
		}
		spec.EndpointSpec.Ports = append(kept, ports...)
	}
	if fs.Changed("force") && o.force {
		ts.ForceUpdate++
	}
	return nil
}

// editList adds items (replacing those with the same key) and removes those whose key is in rm.
func editList(list, add, rm []string, key func(string) string) []string {
	var out []string
	for _, s := range list {
		drop := false
		for _, a := range add {
			drop = drop || key(a) == key(s)
		}
		for _, r := range rm {
			drop = drop || key(r) == key(s)
		}
		if !drop {
			out = append(out, s)
		}
	}
	return append(out, add...)
}

// parsePublish reads --publish: "8080:80[/udp]" or "published=8080,target=80,protocol=udp,mode=host".
func parsePublish(in []string) ([]swarm.PortConfig, error) {
	var out []swarm.PortConfig
	for _, s := range in {
		p := swarm.PortConfig{Protocol: swarm.PortConfigProtocolTCP}
		num := func(v string) (uint32, error) {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return 0, fmt.Errorf("invalid argument %q for \"-p, --publish\" flag: invalid port %q", s, v)
			}
			return uint32(n), nil
		}
		var err error
		if strings.Contains(s, "=") {
			fields, cerr := csv.NewReader(strings.NewReader(s)).Read()
			if cerr != nil {
				return nil, cerr
			}
			for _, f := range fields {
				k, v, _ := strings.Cut(f, "=")
				switch strings.ToLower(k) {
				case "published":
					p.PublishedPort, err = num(v)
				case "target":
					p.TargetPort, err = num(v)
				case "protocol":
					p.Protocol = swarm.PortConfigProtocol(v)
				case "mode":
					p.PublishMode = swarm.PortConfigPublishMode(v)
				default:
					err = fmt.Errorf("invalid argument %q for \"-p, --publish\" flag: invalid field key %s", s, k)
				}
				if err != nil {
					return nil, err
				}
			}
		} else {
			spec, proto, ok := strings.Cut(s, "/")
			if ok {
				p.Protocol = swarm.PortConfigProtocol(proto)
			}
			pub, target, ok := strings.Cut(spec, ":")
			if !ok {
				target, pub = pub, ""
			}
			if pub != "" {
				if p.PublishedPort, err = num(pub); err != nil {
					return nil, err
				}
			}
			if p.TargetPort, err = num(target); err != nil {
				return nil, err
			}
		}
		if p.TargetPort == 0 {
			return nil, fmt.Errorf("invalid argument %q for \"-p, --publish\" flag: missing mandatory field \"target\"", s)
		}
		out = append(out, p)
	}
	return out, nil
}

func newServiceCreateCommand(e *env) *cobra.Command {
	o := &serviceOptions{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new service",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			spec := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: o.name}}
			switch o.mode {
			case "replicated":
				r := uint64(1)
				spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &r}
			case "global":
				if cmd.Flags().Changed("replicas") {
					return errors.New("replicas can only be used with replicated mode")
				}
				spec.Mode.Global = &swarm.GlobalService{}
			default:
				return fmt.Errorf("invalid argument %q for \"--mode\" flag: must be one of replicated, global", o.mode)
			}
			o.image = args[0]
			spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Image: args[0]}
			if len(args) > 1 {
				spec.TaskTemplate.ContainerSpec.Command = args[1:]
			}
			fs := cmd.Flags()
			if err := fs.Set("image", args[0]); err != nil {
				return err
			}
			if err := o.apply(fs, &spec); err != nil {
				return err
			}
			var id string
			err := e.do(ctx, func(c *client.Client) error {
				resp, err := c.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
				if err != nil {
					return err
				}
				id = resp.ID
				for _, w := range resp.Warnings {
					fmt.Fprintln(e.Err, w)
				}
				if o.detach {
					return nil
				}
				return waitService(ctx, c, id)
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Out, id)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	addServiceFlags(fs, o, true)
	// create takes the image as an argument; the hidden flag lets apply treat both commands alike.
	fs.StringVar(&o.image, "image", "", "")
	_ = fs.MarkHidden("image")
	return cmd
}

// waitService waits until a service's tasks run as it wants, or its update has ended.
func waitService(ctx context.Context, c *client.Client, id string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		list, err := c.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("id", id)), Status: true})
		if err != nil {
			return err
		}
		for _, s := range list {
			if s.ID != id {
				continue
			}
			updating := s.UpdateStatus != nil && (s.UpdateStatus.State == swarm.UpdateStateUpdating || s.UpdateStatus.State == swarm.UpdateStateRollbackStarted)
			if st := s.ServiceStatus; st != nil && st.RunningTasks == st.DesiredTasks && !updating {
				return nil
			}
			if s.UpdateStatus != nil && (s.UpdateStatus.State == swarm.UpdateStatePaused || s.UpdateStatus.State == swarm.UpdateStateRollbackPaused) {
				return fmt.Errorf("service update paused: %s", s.UpdateStatus.Message)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("service did not converge within 2 minutes (it goes on in the background)")
}

const servicesDefaultFormat = "table {{.ID}}\t{{.Name}}\t{{.Mode}}\t{{.Replicas}}\t{{.Image}}\t{{.Ports}}"

type serviceRow struct {
	s   swarm.Service
	hdr bool
}

func (r serviceRow) pick(h, v string) string {
	if r.hdr {
		return h
	}
	return v
}

// ID is the short service ID.
func (r serviceRow) ID() string { return r.pick("ID", truncate(r.s.ID, 12)) }

// Name is the service's name.
func (r serviceRow) Name() string { return r.pick("NAME", r.s.Spec.Name) }

// Mode is replicated or global.
func (r serviceRow) Mode() string {
	if r.s.Spec.Mode.Global != nil {
		return r.pick("MODE", "global")
	}
	return r.pick("MODE", "replicated")
}

// Replicas is running/desired.
func (r serviceRow) Replicas() string {
	v := ""
	if st := r.s.ServiceStatus; st != nil {
		v = fmt.Sprintf("%d/%d", st.RunningTasks, st.DesiredTasks)
	}
	return r.pick("REPLICAS", v)
}

// Image is the task template's image.
func (r serviceRow) Image() string {
	v := ""
	if cs := r.s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		v = cs.Image
	}
	return r.pick("IMAGE", v)
}

// Ports lists the published ports.
func (r serviceRow) Ports() string {
	var ps []string
	for _, p := range r.s.Endpoint.Ports {
		ps = append(ps, fmt.Sprintf("*:%d->%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
	}
	return r.pick("PORTS", strings.Join(ps, ", "))
}

func newServiceLsCommand(e *env) *cobra.Command {
	var quiet bool
	var filterFlags []string
	var format string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List services",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			var list []swarm.Service
			err = e.do(ctx, func(c *client.Client) error {
				list, err = c.ServiceList(ctx, swarm.ServiceListOptions{Filters: f, Status: true})
				return err
			})
			if err != nil {
				return err
			}
			sort.Slice(list, func(i, j int) bool { return list[i].Spec.Name < list[j].Spec.Name })
			if quiet && format == "" {
				format = "{{.ID}}"
			}
			rows := make([]any, 0, len(list))
			for _, s := range list {
				rows = append(rows, serviceRow{s: s})
			}
			return renderRows(e.Out, format, servicesDefaultFormat, serviceRow{hdr: true}, rows)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&filterFlags, "filter", "f", nil, "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	return cmd
}

const tasksDefaultFormat = "table {{.ID}}\t{{.Name}}\t{{.Image}}\t{{.Node}}\t{{.DesiredState}}\t{{.CurrentState}}\t{{.Error}}\t{{.Ports}}"

type taskRow struct {
	t       swarm.Task
	name    string
	node    string
	noTrunc bool
	hdr     bool
}

func (r taskRow) pick(h, v string) string {
	if r.hdr {
		return h
	}
	return v
}

// ID is the task's ID.
func (r taskRow) ID() string {
	if r.noTrunc {
		return r.pick("ID", r.t.ID)
	}
	return r.pick("ID", truncate(r.t.ID, 12))
}

// Name is <service>.<slot>.
func (r taskRow) Name() string { return r.pick("NAME", r.name) }

// Image is the task's image.
func (r taskRow) Image() string {
	v := ""
	if cs := r.t.Spec.ContainerSpec; cs != nil {
		v = cs.Image
	}
	return r.pick("IMAGE", v)
}

// Node is the hostname of the task's node.
func (r taskRow) Node() string { return r.pick("NODE", r.node) }

// DesiredState is what the task should be.
func (r taskRow) DesiredState() string {
	return r.pick("DESIRED STATE", capitalize(string(r.t.DesiredState)))
}

// CurrentState is the task's state and for how long.
func (r taskRow) CurrentState() string {
	return r.pick("CURRENT STATE", fmt.Sprintf("%s %s ago", capitalize(string(r.t.Status.State)), humanDuration(time.Since(r.t.Status.Timestamp))))
}

// Error is why the task failed or waits.
func (r taskRow) Error() string {
	v := r.t.Status.Err
	if v != "" && !r.noTrunc {
		v = "\"" + ellipsis(v, 28) + "\""
	}
	return r.pick("ERROR", v)
}

// Ports lists the task's published host ports.
func (r taskRow) Ports() string {
	var ps []string
	for _, p := range r.t.Status.PortStatus.Ports {
		ps = append(ps, fmt.Sprintf("*:%d->%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
	}
	return r.pick("PORTS", strings.Join(ps, ", "))
}

func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	case s < 3600:
		return fmt.Sprintf("%d minutes", s/60)
	default:
		return fmt.Sprintf("%d hours", s/3600)
	}
}

func newServicePsCommand(e *env) *cobra.Command {
	var quiet, noTrunc bool
	var filterFlags []string
	var format string
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] SERVICE [SERVICE...]",
		Short: "List the tasks of one or more services",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			var rows []any
			err = e.do(ctx, func(c *client.Client) error {
				names := map[string]string{}
				for _, ref := range args {
					s, _, err := c.ServiceInspectWithRaw(ctx, ref, swarm.ServiceInspectOptions{})
					if err != nil {
						return err
					}
					names[s.ID] = s.Spec.Name
					f.Add("service", s.ID)
				}
				tasks, err := c.TaskList(ctx, swarm.TaskListOptions{Filters: f})
				if err != nil {
					return err
				}
				sort.SliceStable(tasks, func(i, j int) bool {
					a, b := tasks[i], tasks[j]
					if a.ServiceID != b.ServiceID {
						return names[a.ServiceID] < names[b.ServiceID]
					}
					if a.Slot != b.Slot {
						return a.Slot < b.Slot
					}
					return a.Meta.CreatedAt.After(b.Meta.CreatedAt)
				})
				hosts := map[string]string{}
				seen := map[string]bool{}
				for _, t := range tasks {
					if _, ok := hosts[t.NodeID]; !ok && t.NodeID != "" {
						if n, _, err := c.NodeInspectWithRaw(ctx, t.NodeID); err == nil {
							hosts[t.NodeID] = n.Description.Hostname
						}
					}
					name := names[t.ServiceID] + "." + strconv.Itoa(t.Slot)
					if t.Slot == 0 {
						name = names[t.ServiceID] + "." + t.NodeID
					}
					shown := name
					if seen[name] {
						shown = ` \_ ` + name
					}
					seen[name] = true
					rows = append(rows, taskRow{t: t, name: shown, node: hosts[t.NodeID], noTrunc: noTrunc})
				}
				return nil
			})
			if err != nil {
				return err
			}
			if quiet && format == "" {
				format = "{{.ID}}"
			}
			return renderRows(e.Out, format, tasksDefaultFormat, taskRow{hdr: true}, rows)
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVarP(&filterFlags, "filter", "f", nil, "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", "Pretty-print tasks using a Go template")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display task IDs")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

func newServiceInspectCommand(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] SERVICE [SERVICE...]",
		Short: "Display detailed information on one or more services",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var list []swarm.Service
			var errs []string
			err := e.do(ctx, func(c *client.Client) error {
				for _, ref := range args {
					s, _, err := c.ServiceInspectWithRaw(ctx, ref, swarm.ServiceInspectOptions{})
					if err != nil {
						errs = append(errs, err.Error())
						continue
					}
					list = append(list, s)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if format == "" {
				b, err := json.MarshalIndent(list, "", "    ")
				if err != nil {
					return err
				}
				fmt.Fprintf(e.Out, "%s\n", b)
			} else {
				for _, s := range list {
					if err := executeTemplate(e.Out, format, s); err != nil {
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

func newServiceRmCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "rm SERVICE [SERVICE...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more services",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var errs []string
			for _, ref := range args {
				if err := e.do(ctx, func(c *client.Client) error { return c.ServiceRemove(ctx, ref) }); err != nil {
					errs = append(errs, err.Error())
					continue
				}
				fmt.Fprintln(e.Out, ref)
			}
			return joinErrors(errs)
		},
	}
}

// updateService reads a service, lets change edit its spec, and writes it back at the version read.
func updateService(ctx context.Context, e *env, ref string, rollback bool, detach bool, change func(*swarm.ServiceSpec) error) error {
	return e.do(ctx, func(c *client.Client) error {
		s, _, err := c.ServiceInspectWithRaw(ctx, ref, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		opts := swarm.ServiceUpdateOptions{}
		if rollback {
			opts.Rollback = "previous"
		} else if err := change(&s.Spec); err != nil {
			return err
		}
		resp, err := c.ServiceUpdate(ctx, s.ID, s.Version, s.Spec, opts)
		if err != nil {
			return err
		}
		for _, w := range resp.Warnings {
			fmt.Fprintln(e.Err, w)
		}
		if detach {
			return nil
		}
		return waitService(ctx, c, s.ID)
	})
}

func newServiceScaleCommand(e *env) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS [SERVICE=REPLICAS...]",
		Short: "Scale one or multiple replicated services",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []string
			for _, a := range args {
				name, v, ok := strings.Cut(a, "=")
				n, err := strconv.ParseUint(v, 10, 64)
				if !ok || err != nil {
					errs = append(errs, fmt.Sprintf("invalid scale specifier '%s'.\nSee 'berth service scale --help'.", a))
					continue
				}
				err = updateService(cmd.Context(), e, name, false, detach, func(spec *swarm.ServiceSpec) error {
					if spec.Mode.Replicated == nil {
						return fmt.Errorf("scale can only be used with replicated or replicated-job mode")
					}
					spec.Mode.Replicated.Replicas = &n
					return nil
				})
				if err != nil {
					errs = append(errs, err.Error())
					continue
				}
				fmt.Fprintf(e.Out, "%s scaled to %d\n", name, n)
			}
			return joinErrors(errs)
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "Exit immediately instead of waiting for the service to converge")
	return cmd
}

func newServiceUpdateCommand(e *env) *cobra.Command {
	o := &serviceOptions{}
	var rollback bool
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] SERVICE",
		Short: "Update a service",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := updateService(cmd.Context(), e, args[0], rollback, o.detach, func(spec *swarm.ServiceSpec) error {
				return o.apply(cmd.Flags(), spec)
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(e.Out, args[0])
			return nil
		},
	}
	addServiceFlags(cmd.Flags(), o, false)
	cmd.Flags().BoolVar(&rollback, "rollback", false, "Rollback to previous specification")
	return cmd
}

func newServiceRollbackCommand(e *env) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "rollback [OPTIONS] SERVICE",
		Short: "Revert changes to a service's configuration",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := updateService(cmd.Context(), e, args[0], true, detach, nil); err != nil {
				return err
			}
			fmt.Fprintln(e.Out, args[0])
			return nil
		},
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "Exit immediately instead of waiting for the service to converge")
	return cmd
}
