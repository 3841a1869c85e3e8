package events

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// StreamOptions select what Stream sends.
type StreamOptions struct {
	// Since replays recorded events from this time on; zero replays nothing (unless Until is set).
	Since time.Time
	// Until ends the stream at this time; one in the past sends only recorded events. Zero streams until
	// ctx ends.
	Until   time.Time
	Filters filters.Args
}

// Stream sends events matching opts to emit: first the recorded ones in the window, then live ones,
// until ctx ends, Until passes, or emit fails. It returns nil when the stream simply ended.
func (b *Bus) Stream(ctx context.Context, opts StreamOptions, emit func(events.Message) error) error {
	if err := ValidateFilters(opts.Filters); err != nil {
		return err
	}
	past, live, cancel := b.Subscribe()
	defer cancel()
	if !opts.Since.IsZero() || !opts.Until.IsZero() {
		since := opts.Since.UnixNano()
		if opts.Since.IsZero() {
			since = 0
		}
		for _, m := range past {
			if m.TimeNano < since || (!opts.Until.IsZero() && m.TimeNano > opts.Until.UnixNano()) {
				continue
			}
			if Match(m, opts.Filters) {
				if err := emit(m); err != nil {
					return err
				}
			}
		}
	}
	var deadline <-chan time.Time
	if !opts.Until.IsZero() {
		d := time.Until(opts.Until)
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case m, ok := <-live:
			if !ok {
				return fmt.Errorf("event subscriber fell behind and was dropped")
			}
			if !opts.Until.IsZero() && m.TimeNano > opts.Until.UnixNano() {
				return nil
			}
			if Match(m, opts.Filters) {
				if err := emit(m); err != nil {
					return err
				}
			}
		case <-deadline:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// ParseTime reads the API's since/until values: Unix seconds with an optional fraction of up to nine
// digits ("1700000000.123456789"), which is what clients send after resolving durations and dates.
// An RFC 3339 time is accepted too. "" gives the zero time.
func ParseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		if t, err2 := time.Parse(time.RFC3339Nano, v); err2 == nil {
			return t, nil
		}
		return time.Time{}, fmt.Errorf("invalid timestamp %q", v)
	}
	var ns int64
	if frac != "" {
		if len(frac) > 9 {
			frac = frac[:9]
		}
		frac += strings.Repeat("0", 9-len(frac))
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("invalid timestamp %q", v)
		}
	}
	return time.Unix(s, ns), nil
}

// ParseStreamOptions reads the API's since, until and filters into StreamOptions, rejecting what Docker
// rejects.
func ParseStreamOptions(since, until string, f filters.Args) (StreamOptions, error) {
	var o StreamOptions
	var err error
	if o.Since, err = ParseTime(since); err != nil {
		return o, err
	}
	if o.Until, err = ParseTime(until); err != nil {
		return o, err
	}
	if err := ValidateFilters(f); err != nil {
		return o, err
	}
	o.Filters = f
	return o, nil
}
