package events

import (
	"strings"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// acceptedFilters are the filter keys Docker accepts for events; the ones for objects Berth does not
// have yet (networks, volumes, swarm) are accepted and simply match nothing of theirs.
var acceptedFilters = map[string]bool{
	"config": true, "container": true, "daemon": true, "event": true, "image": true, "label": true,
	"network": true, "node": true, "plugin": true, "scope": true, "secret": true, "service": true,
	"type": true, "volume": true,
}

// ValidateFilters rejects keys Docker does not know, with Docker's message.
func ValidateFilters(f filters.Args) error { return f.Validate(acceptedFilters) }

// Match applies Docker's events filters: every key given must match. Object filters (container=,
// image=, ...) also exclude events of other types, as in Docker.
func Match(m events.Message, f filters.Args) bool {
	if f.Len() == 0 {
		return true
	}
	attrs := m.Actor.Attributes
	return matchAction(m.Action, f) &&
		f.ExactMatch("type", string(m.Type)) &&
		f.ExactMatch("scope", scopeOf(m)) &&
		matchNamed(m, f, events.ContainerEventType) &&
		matchNamed(m, f, events.NetworkEventType) &&
		matchNamed(m, f, events.VolumeEventType) &&
		matchNamed(m, f, events.PluginEventType) &&
		matchNamed(m, f, events.DaemonEventType) &&
		matchImage(m, f) &&
		f.MatchKVList("label", attrs)
}

func scopeOf(m events.Message) string {
	if m.Scope == "" {
		return "local"
	}
	return m.Scope
}

// matchAction lets "exec_start" match "exec_start: sh -c ..." and "health_status" match
// "health_status: healthy", as Docker does for actions that carry a detail.
func matchAction(a events.Action, f filters.Args) bool {
	if !f.Contains("event") {
		return true
	}
	s := string(a)
	if f.ExactMatch("event", s) {
		return true
	}
	if base, _, ok := strings.Cut(s, ":"); ok {
		return f.ExactMatch("event", base)
	}
	return false
}

// matchNamed matches the key named after typ against the actor's ID (or an ID prefix) and its name.
func matchNamed(m events.Message, f filters.Args, typ events.Type) bool {
	key := string(typ)
	if !f.Contains(key) {
		return true
	}
	return f.FuzzyMatch(key, m.Actor.ID) || f.FuzzyMatch(key, m.Actor.Attributes["name"])
}

// matchImage matches image= against an image event's ID and name, and a container event's image.
func matchImage(m events.Message, f filters.Args) bool {
	if !f.Contains("image") {
		return true
	}
	name := m.Actor.Attributes["image"]
	if m.Type == events.ImageEventType {
		name = m.Actor.Attributes["name"]
	}
	for _, v := range []string{m.Actor.ID, name, stripTag(m.Actor.ID), stripTag(name)} {
		if v != "" && f.ExactMatch("image", v) {
			return true
		}
	}
	return false
}

// stripTag drops ":tag" from a reference, leaving a registry port ("host:5000/img") alone.
func stripTag(ref string) string {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") || strings.HasPrefix(ref, "sha256:") {
		return ref
	}
	return ref[:i]
}
