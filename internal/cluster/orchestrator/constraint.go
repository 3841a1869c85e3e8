package orchestrator

import (
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/swarm"
)

// Constraint is one placement constraint: "node.labels.zone==east", "node.role!=manager".
type Constraint struct {
	Key   string // lower-cased, e.g. "node.labels.zone"
	Equal bool
	Value string
}

// ParseConstraints reads a service's placement constraints, with Docker's error wording.
func ParseConstraints(in []string) ([]Constraint, error) {
	out := make([]Constraint, 0, len(in))
	for _, s := range in {
		var c Constraint
		var ok bool
		if k, v, found := strings.Cut(s, "!="); found {
			c, ok = Constraint{Key: k, Equal: false, Value: v}, true
		} else if k, v, found := strings.Cut(s, "=="); found {
			c, ok = Constraint{Key: k, Equal: true, Value: v}, true
		}
		c.Key, c.Value = strings.TrimSpace(c.Key), strings.TrimSpace(c.Value)
		if !ok || c.Key == "" || c.Value == "" || strings.ContainsAny(c.Value, "=!") {
			return nil, fmt.Errorf("invalid constraint %q: a constraint is key==value or key!=value", s)
		}
		lk := strings.ToLower(c.Key)
		switch {
		case lk == "node.id", lk == "node.hostname", lk == "node.role", lk == "node.platform.os",
			lk == "node.platform.arch":
			c.Key = lk
		case strings.HasPrefix(lk, "node.labels.") && len(lk) > len("node.labels."),
			strings.HasPrefix(lk, "engine.labels.") && len(lk) > len("engine.labels."):
			// Label names keep their case, as Docker's do.
			prefix := lk[:strings.Index(lk, "labels.")+len("labels.")]
			c.Key = prefix + c.Key[len(prefix):]
		default:
			return nil, fmt.Errorf("invalid constraint %q: unknown key %q (node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name>, engine.labels.<name>)", s, c.Key)
		}
		out = append(out, c)
	}
	return out, nil
}

// Match reports whether the node satisfies the constraint. A label the node does not have matches
// only "!=".
func (c Constraint) Match(n *swarm.Node) bool {
	var have string
	var present = true
	switch {
	case c.Key == "node.id":
		have = n.ID
	case c.Key == "node.hostname":
		have = n.Description.Hostname
	case c.Key == "node.role":
		have = string(n.Spec.Role)
	case c.Key == "node.platform.os":
		have = n.Description.Platform.OS
	case c.Key == "node.platform.arch":
		have = n.Description.Platform.Architecture
	case strings.HasPrefix(c.Key, "node.labels."):
		have, present = n.Spec.Labels[strings.TrimPrefix(c.Key, "node.labels.")]
	case strings.HasPrefix(c.Key, "engine.labels."):
		have, present = n.Description.Engine.Labels[strings.TrimPrefix(c.Key, "engine.labels.")]
	}
	// Docker compares ids, names and labels case-insensitively for the built-in keys, exactly for labels.
	eq := present && have == c.Value
	if !strings.Contains(c.Key, "labels.") {
		eq = present && strings.EqualFold(have, c.Value)
	}
	if c.Equal {
		return eq
	}
	return !eq
}
