package logs

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"time"
)

// TimestampFormat is how Read prefixes entries when asked for timestamps: RFC 3339 with nanoseconds, in
// UTC, fixed width so columns line up (Docker's RFC3339NanoFixed).
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// ReadOptions selects entries, as the query of GET /containers/{id}/logs does.
type ReadOptions struct {
	Stdout, Stderr bool
	// Follow keeps reading what is appended after the end of the file.
	Follow bool
	// Timestamps prefixes each entry with its time in TimestampFormat and a space.
	Timestamps bool
	// Since skips entries older than it; Until stops at the first entry newer than it. Zero: no bound.
	Since, Until time.Time
	// Tail starts at the last Tail lines of the log (counted over both streams, before Since is applied,
	// as Docker counts); -1 for all.
	Tail int
}

// Stream identifiers of the multiplexed framing (github.com/docker/docker/pkg/stdcopy).
const (
	StreamStdout byte = 1
	StreamStderr byte = 2
)

// pollInterval is how often a follower looks at the file when inotify is unavailable, and how often it
// checks for a log that does not exist yet.
const pollInterval = 100 * time.Millisecond

type entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Read writes the entries of the log at path selected by o to w in Docker's multiplexed stdcopy framing
// (stream byte 1 or 2, three zero bytes, big-endian uint32 length, payload), one frame per entry. A missing
// log reads as empty. With o.Follow it keeps reading appended lines until ctx is done (returning ctx's
// error), or until stopped is closed and everything written before that has been sent (returning nil);
// stopped may be nil.
func Read(ctx context.Context, path string, o ReadOptions, w io.Writer, stopped <-chan struct{}) error {
	f, late, err := openLog(ctx, path, o.Follow, stopped)
	if err != nil || f == nil {
		return err
	}
	defer f.Close()

	var wt *watcher
	if o.Follow {
		// Watch before reading so nothing appended between the last read and the first wait is missed.
		wt = newWatcher(path)
		defer wt.close()
	}

	fi, err := f.Stat()
	if err != nil {
		return err
	}
	tail := o.Tail
	if late {
		tail = -1 // everything in a log that appeared while we waited is new
	}
	off, err := tailOffset(f, fi.Size(), tail)
	if err != nil {
		return err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return err
	}

	var untilC <-chan time.Time
	if o.Follow && !o.Until.IsZero() {
		t := time.NewTimer(time.Until(o.Until))
		defer t.Stop()
		untilC = t.C
	}

	br := bufio.NewReaderSize(f, 64*1024)
	var (
		acc     []byte // a line longer than br's buffer, or one whose end has not been written yet
		out     []byte
		e       entry
		drained bool // stopped was closed: read to the end once more, then return
	)
	for {
		chunk, err := br.ReadSlice('\n')
		acc = append(acc, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == nil {
			e = entry{}
			if jerr := json.Unmarshal(acc, &e); jerr == nil {
				stop, werr := emit(w, &out, &e, o)
				if werr != nil || stop {
					return werr
				}
			}
			acc = acc[:0]
			if cap(acc) > 256*1024 {
				acc = nil
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		// End of what is written so far; acc keeps a partial line for the next round.
		if !o.Follow || drained {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var poll <-chan time.Time
		if wt == nil {
			poll = time.After(pollInterval)
		} else {
			poll = time.After(5 * pollInterval) // belt and braces against a missed event
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped:
			drained = true
			stopped = nil
		case <-untilC:
			drained = true
		case <-wt.changed():
		case <-poll:
		}
	}
}

// emit writes one entry as a frame; stop reports that Until has passed.
func emit(w io.Writer, out *[]byte, e *entry, o ReadOptions) (stop bool, err error) {
	var stream byte
	switch e.Stream {
	case "stdout":
		if !o.Stdout {
			return false, nil
		}
		stream = StreamStdout
	case "stderr":
		if !o.Stderr {
			return false, nil
		}
		stream = StreamStderr
	default:
		return false, nil
	}
	if !o.Since.IsZero() && e.Time.Before(o.Since) {
		return false, nil
	}
	if !o.Until.IsZero() && e.Time.After(o.Until) {
		return true, nil
	}
	b := append((*out)[:0], stream, 0, 0, 0, 0, 0, 0, 0)
	if o.Timestamps {
		b = e.Time.UTC().AppendFormat(b, TimestampFormat)
		b = append(b, ' ')
	}
	b = append(b, e.Log...)
	binary.BigEndian.PutUint32(b[4:8], uint32(len(b)-8))
	*out = b
	_, err = w.Write(b)
	return false, err
}

// openLog opens the log, or, when following a log that does not exist yet (a container not started
// yet), waits for it to appear; late reports that it did. It returns a nil file when there is nothing to
// read.
func openLog(ctx context.Context, path string, follow bool, stopped <-chan struct{}) (f *os.File, late bool, err error) {
	for {
		f, err := os.Open(path)
		if err == nil {
			return f, late, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, false, err
		}
		if !follow {
			return nil, false, nil
		}
		late = true
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-stopped:
			// One last look: the container may have written its log just before stopping.
			f, err := os.Open(path)
			if err != nil {
				return nil, false, nil
			}
			return f, true, nil
		case <-time.After(pollInterval):
		}
	}
}
