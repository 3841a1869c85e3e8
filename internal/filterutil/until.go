// Package filterutil reads list and prune filters the way Docker does, for every service alike.
package filterutil

import (
	"errors"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	timetypes "github.com/docker/docker/api/types/time"
)

// Until reads the `until` filter: a Unix timestamp, a date/time, or a duration before now. The zero
// time means no filter.
func Until(f filters.Args) (time.Time, error) {
	vals := f.Get("until")
	switch len(vals) {
	case 0:
		return time.Time{}, nil
	case 1:
	default:
		return time.Time{}, errdefs.InvalidParameter(errors.New("more than one until filter specified"))
	}
	ts, err := timetypes.GetTimestamp(vals[0], time.Now())
	if err != nil {
		return time.Time{}, errdefs.InvalidParameter(err)
	}
	sec, nsec, err := timetypes.ParseTimestamps(ts, 0)
	if err != nil {
		return time.Time{}, errdefs.InvalidParameter(err)
	}
	return time.Unix(sec, nsec), nil
}
