package api

import (
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/logs"
	"github.com/docker/docker/api/types/backend"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// writeLogMessages writes a log stream as Docker does: each line behind its time (timestamps) and its
// attributes as sorted, query-escaped k=v pairs (details: the docker CLI's service logs parse them),
// multiplexed or raw; a message with an error is written to the system-error stream, which the client
// reports after what came before. It returns at the first write error.
func writeLogMessages(w io.Writer, msgs <-chan *backend.LogMessage, opts container.LogsOptions, mux bool) error {
	stdout, stderr, syserr := w, w, w
	if mux {
		stdout = stdcopy.NewStdWriter(w, stdcopy.Stdout)
		stderr = stdcopy.NewStdWriter(w, stdcopy.Stderr)
		syserr = stdcopy.NewStdWriter(w, stdcopy.Systemerr)
	}
	var line []byte
	for msg := range msgs {
		if msg.Err != nil {
			if _, err := fmt.Fprintf(syserr, "Error grabbing logs: %v\n", msg.Err); err != nil {
				return err
			}
			continue
		}
		out := stdout
		switch {
		case msg.Source == "stdout" && opts.ShowStdout:
		case msg.Source == "stderr" && opts.ShowStderr:
			out = stderr
		default:
			continue
		}
		line = line[:0]
		if opts.Timestamps {
			line = msg.Timestamp.UTC().AppendFormat(line, logs.TimestampFormat)
			line = append(line, ' ')
		}
		if opts.Details {
			line = append(line, logAttrs(msg.Attrs)...)
			line = append(line, ' ')
		}
		line = append(line, msg.Line...)
		if _, err := out.Write(line); err != nil {
			return err
		}
	}
	return nil
}

func logAttrs(attrs []backend.LogAttr) string {
	attrs = slices.SortedFunc(slices.Values(attrs), func(a, b backend.LogAttr) int { return strings.Compare(a.Key, b.Key) })
	pairs := make([]string, len(attrs))
	for i, a := range attrs {
		pairs[i] = url.QueryEscape(a.Key) + "=" + url.QueryEscape(a.Value)
	}
	return strings.Join(pairs, ",")
}
