package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/spf13/cobra"
)

type serviceLogsOptions struct {
	follow, timestamps, details, raw bool
	noTaskIDs, noResolve, noTrunc    bool
	since, tail                      string
}

func newServiceLogsCommand(e *env) *cobra.Command {
	var o serviceLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] SERVICE|TASK",
		Short: "Fetch the logs of a service or task",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			lo := container.LogsOptions{ShowStdout: true, ShowStderr: true, Since: o.since, Timestamps: o.timestamps,
				Follow: o.follow, Tail: o.tail, Details: o.details || !o.raw}
			// The details are what the task prefix is made of, so they are asked for unless the output is raw.
			var (
				tty   bool
				width int // of the widest slot number, which prefixes are padded to
				open  func(c *client.Client) (io.ReadCloser, error)
			)
			err := e.do(ctx, func(c *client.Client) error {
				svc, _, err := c.ServiceInspectWithRaw(ctx, args[0], swarm.ServiceInspectOptions{})
				if err == nil {
					tty = svc.Spec.TaskTemplate.ContainerSpec != nil && svc.Spec.TaskTemplate.ContainerSpec.TTY
					width = 1
					if r := svc.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
						width = len(strconv.FormatUint(*r.Replicas, 10))
					}
					open = func(c *client.Client) (io.ReadCloser, error) { return c.ServiceLogs(ctx, svc.ID, lo) }
					return nil
				}
				if !cerrdefs.IsNotFound(err) {
					return err
				}
				task, _, err := c.TaskInspectWithRaw(ctx, args[0])
				if cerrdefs.IsNotFound(err) {
					return fmt.Errorf("no such task or service: %s", args[0])
				} else if err != nil {
					return err
				}
				tty = task.Spec.ContainerSpec != nil && task.Spec.ContainerSpec.TTY
				width = len(strconv.Itoa(task.Slot))
				open = func(c *client.Client) (io.ReadCloser, error) { return c.TaskLogs(ctx, task.ID, lo) }
				return nil
			})
			if err != nil {
				return err
			}
			if tty && !o.raw {
				return errors.New("tty service logs only supported with --raw")
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			rc, err := open(c)
			if err != nil {
				return err
			}
			defer rc.Close()
			if tty {
				_, err = io.Copy(e.Out, rc)
				return err
			}
			if o.raw {
				_, err = stdcopy.StdCopy(e.Out, e.Err, rc)
				return err
			}
			p := &taskPrefixer{ctx: ctx, c: c, o: o, width: width, names: map[string]string{}}
			_, err = stdcopy.StdCopy(p.writer(e.Out), p.writer(e.Err), rc)
			return err
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&o.follow, "follow", "f", false, "Follow log output")
	fs.StringVar(&o.since, "since", "", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	fs.StringVarP(&o.tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	fs.BoolVarP(&o.timestamps, "timestamps", "t", false, "Show timestamps")
	fs.BoolVar(&o.details, "details", false, "Show extra details provided to logs")
	fs.BoolVar(&o.raw, "raw", false, "Do not neatly format logs")
	fs.BoolVar(&o.noTaskIDs, "no-task-ids", false, "Do not include task IDs in output")
	fs.BoolVar(&o.noResolve, "no-resolve", false, "Do not map IDs to Names in output")
	fs.BoolVar(&o.noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

// taskPrefixer rewrites each line of a service's log stream, "[time ]details line", as docker does:
// "[time ]service.slot.task@node    | [details ]line", the names resolved once per task.
type taskPrefixer struct {
	ctx   context.Context
	c     *client.Client
	o     serviceLogsOptions
	width int

	mu    sync.Mutex
	names map[string]string // details → prefix
}

func (p *taskPrefixer) writer(w io.Writer) io.Writer {
	return writerFunc(func(b []byte) (int, error) {
		out, err := p.rewrite(b)
		if err != nil {
			return 0, err
		}
		if _, err := w.Write(out); err != nil {
			return 0, err
		}
		return len(b), nil
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// rewrite turns one log line (stdcopy writes a frame, one line, at a time) into its prefixed form.
func (p *taskPrefixer) rewrite(b []byte) ([]byte, error) {
	var ts []byte
	if p.o.timestamps {
		var ok bool
		if ts, b, ok = bytes.Cut(b, []byte(" ")); !ok {
			return nil, fmt.Errorf("invalid context in log message: %q", b)
		}
	}
	details, line, ok := bytes.Cut(b, []byte(" "))
	if !ok {
		return nil, fmt.Errorf("invalid context in log message: %q", b)
	}
	attrs, err := parseLogDetails(string(details))
	if err != nil {
		return nil, err
	}
	prefix, err := p.prefix(attrs)
	if err != nil {
		return nil, err
	}
	var out []byte
	if ts != nil {
		out = append(append(out, ts...), ' ')
	}
	out = append(out, prefix+"    | "...)
	if p.o.details {
		var rest []string
		for _, kv := range strings.Split(string(details), ",") {
			if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "com.docker.swarm.") {
				rest = append(rest, kv)
			}
		}
		if len(rest) > 0 {
			out = append(out, strings.Join(rest, ",")+" "...)
		}
	}
	return append(out, line...), nil
}

// parseLogDetails reads the API's "k=v,k=v" details (query-escaped).
func parseLogDetails(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("invalid details format: %q", s)
		}
		var err error
		if k, err = url.QueryUnescape(k); err != nil {
			return nil, err
		}
		if v, err = url.QueryUnescape(v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// prefix is "service.slot[.task]@node" plus padding to the widest slot, from the line's details.
func (p *taskPrefixer) prefix(attrs map[string]string) (string, error) {
	nodeID, serviceID, taskID := attrs["com.docker.swarm.node.id"], attrs["com.docker.swarm.service.id"], attrs["com.docker.swarm.task.id"]
	if nodeID == "" || serviceID == "" || taskID == "" {
		return "", fmt.Errorf("missing swarm context in log details: %v", attrs)
	}
	key := nodeID + "/" + serviceID + "/" + taskID
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.names[key]; ok {
		return s, nil
	}
	node, service := nodeID, serviceID
	if !p.o.noResolve {
		if n, _, err := p.c.NodeInspectWithRaw(p.ctx, nodeID); err == nil {
			node = n.Description.Hostname
		}
		if s, _, err := p.c.ServiceInspectWithRaw(p.ctx, serviceID, swarm.ServiceInspectOptions{}); err == nil {
			service = s.Spec.Name
		}
	}
	task, _, err := p.c.TaskInspectWithRaw(p.ctx, taskID)
	if err != nil {
		return "", err
	}
	name := service + "." + strconv.Itoa(task.Slot)
	if !p.o.noTaskIDs {
		if p.o.noTrunc {
			name += "." + task.ID
		} else {
			name += "." + truncateID(task.ID)
		}
	}
	s := name + "@" + node + strings.Repeat(" ", max(0, p.width-len(strconv.Itoa(task.Slot))))
	p.names[key] = s
	return s, nil
}
