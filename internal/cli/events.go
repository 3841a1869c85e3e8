package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

// rfc3339NanoFixed is docker's event time layout: always nine fraction digits, so columns line up.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

func newEventsCommand(e *env) *cobra.Command {
	var since, until, format string
	var filterArgs []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f := filters.NewArgs()
			for _, kv := range filterArgs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("bad format of filter (expected name=value)")
				}
				f.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
			}
			if err := e.do(ctx, func(c *client.Client) error { _, err := c.Ping(ctx); return err }); err != nil {
				return err
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			// The SDK turns durations and dates in since/until into the API's timestamps.
			msgs, errs := c.Events(ctx, events.ListOptions{Since: since, Until: until, Filters: f})
			for {
				select {
				case m := <-msgs:
					if err := printEvent(e.Out, format, m); err != nil {
						return err
					}
				case err := <-errs:
					if err == io.EOF || ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		},
	}
	fs := cmd.Flags()
	stringsFlag(fs, &filterArgs, "filter", "f", "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.StringVar(&since, "since", "", "Show all events created since timestamp")
	fs.StringVar(&until, "until", "", "Stream events until this timestamp")
	return cmd
}

// printEvent writes one event as docker does: time, type, action, actor and sorted attributes, or
// through the user's template.
func printEvent(w io.Writer, format string, m events.Message) error {
	if format != "" {
		return executeTemplate(w, format, m)
	}
	var b strings.Builder
	if m.TimeNano != 0 {
		b.WriteString(time.Unix(0, m.TimeNano).Format(rfc3339NanoFixed) + " ")
	} else if m.Time != 0 {
		b.WriteString(time.Unix(m.Time, 0).Format(rfc3339NanoFixed) + " ")
	}
	fmt.Fprintf(&b, "%s %s %s", m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = k + "=" + m.Actor.Attributes[k]
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(attrs, ", "))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
