package executor

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"text/template"

	"github.com/docker/docker/api/types/swarm"
)

// templateContext is what a service's templated fields may use, with Docker's names
// (`docker service create --hostname '{{.Node.Hostname}}-{{.Task.Slot}}'`): the worker expands them,
// because only it knows the node and the task.
type templateContext struct {
	Service struct {
		ID, Name string
		Labels   map[string]string
	}
	Node struct {
		ID, Hostname string
		Platform     struct{ Architecture, OS string }
	}
	Task struct{ ID, Name, Slot string }
}

func newTemplateContext(a Assignment, nodeHostname string) templateContext {
	var c templateContext
	t := a.Task
	c.Service.ID, c.Service.Name, c.Service.Labels = t.ServiceID, a.ServiceName, a.ServiceLabels
	c.Node.ID, c.Node.Hostname = t.NodeID, nodeHostname
	c.Node.Platform.Architecture, c.Node.Platform.OS = runtime.GOARCH, runtime.GOOS
	c.Task.ID, c.Task.Name = t.ID, ContainerName(a.ServiceName, t)
	c.Task.Slot = strconv.Itoa(t.Slot)
	if t.Slot == 0 {
		c.Task.Slot = t.NodeID
	}
	return c
}

func (c templateContext) expand(field, s string) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	tmpl, err := template.New(field).Option("missingkey=error").Parse(s)
	if err != nil {
		return "", fmt.Errorf("expanding %s failed: %w", field, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, c); err != nil {
		return "", fmt.Errorf("expanding %s failed: %w", field, err)
	}
	return b.String(), nil
}

// expandContainerSpec returns cs with its templated fields (hostname, env, mount sources and targets)
// expanded for this task on this node; cs itself is not changed.
func expandContainerSpec(cs *swarm.ContainerSpec, c templateContext) (*swarm.ContainerSpec, error) {
	out := *cs
	var err error
	if out.Hostname, err = c.expand("hostname", cs.Hostname); err != nil {
		return nil, err
	}
	out.Env = nil
	for _, e := range cs.Env {
		v, err := c.expand("env", e)
		if err != nil {
			return nil, err
		}
		out.Env = append(out.Env, v)
	}
	out.Mounts = nil
	for _, m := range cs.Mounts {
		mm := m
		if mm.Source, err = c.expand("mount source", m.Source); err != nil {
			return nil, err
		}
		if mm.Target, err = c.expand("mount target", m.Target); err != nil {
			return nil, err
		}
		out.Mounts = append(out.Mounts, mm)
	}
	return &out, nil
}
