package cli

import (
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
	units "github.com/docker/go-units"
)

// humanSince is docker's "N units ago" for table columns.
func humanSince(t, now time.Time) string {
	return units.HumanDuration(now.Sub(t)) + " ago"
}

// containerStatus renders a container's state the way `docker ps` shows it ("Up 3 seconds",
// "Exited (0) 2 minutes ago", "Created"). The daemon normally sends this text; berth computes it only
// when a daemon leaves Status empty.
func containerStatus(st *container.State, now time.Time) string {
	if st == nil {
		return ""
	}
	started := parseAPITime(st.StartedAt)
	finished := parseAPITime(st.FinishedAt)
	switch {
	case st.Running:
		if st.Paused {
			return fmt.Sprintf("Up %s (Paused)", units.HumanDuration(now.Sub(started)))
		}
		if st.Restarting {
			return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(finished)))
		}
		if st.Health != nil && st.Health.Status != "" && st.Health.Status != "none" {
			return fmt.Sprintf("Up %s (%s)", units.HumanDuration(now.Sub(started)), st.Health.Status)
		}
		return "Up " + units.HumanDuration(now.Sub(started))
	case st.Status == container.StateRemoving:
		return "Removal In Progress"
	case st.Dead:
		return "Dead"
	case started.IsZero():
		return "Created"
	case finished.IsZero():
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(now.Sub(finished)))
}

// parseAPITime reads the API's RFC 3339 timestamps; Go's zero time ("0001-01-01T00:00:00Z") means unset.
func parseAPITime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
