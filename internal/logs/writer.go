package logs

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"time"
)

// MaxLineSize is the longest entry the Writer produces: longer lines are split into entries of this size
// whose "log" does not end in a newline, as Docker's json-file driver does.
const MaxLineSize = 16 * 1024

// Writer appends json-file entries to one container's log. It is safe for concurrent use by the goroutines
// copying stdout and stderr.
type Writer struct {
	mu      sync.Mutex
	f       *os.File
	enc     []byte           // reused encoding buffer
	pending map[string]*line // per stream: bytes of a line whose newline has not arrived yet
	closed  bool
}

type line struct {
	buf []byte
	t   time.Time // when its first byte arrived
}

// NewWriter opens path for appending, creating it (0640) if needed; a restarted container keeps its log.
func NewWriter(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	return &Writer{f: f, pending: map[string]*line{}}, nil
}

// Write logs p, read from stream ("stdout" or "stderr") at t. Complete lines are written at once; the
// tail of p after its last newline waits for the rest of its line (or for MaxLineSize bytes, or Close).
func (w *Writer) Write(stream string, p []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return os.ErrClosed
	}
	pl := w.pending[stream]
	if pl == nil {
		pl = &line{}
		w.pending[stream] = pl
	}
	w.enc = w.enc[:0]
	for len(p) > 0 {
		if len(pl.buf) == 0 {
			pl.t = t
		}
		i := bytes.IndexByte(p, '\n')
		room := MaxLineSize - len(pl.buf)
		switch {
		case i >= 0 && i < room:
			if len(pl.buf) == 0 {
				w.enc = appendEntry(w.enc, stream, p[:i+1], pl.t)
			} else {
				pl.buf = append(pl.buf, p[:i+1]...)
				w.enc = appendEntry(w.enc, stream, pl.buf, pl.t)
				pl.buf = pl.buf[:0]
			}
			p = p[i+1:]
		case len(p) >= room:
			// No newline within MaxLineSize: emit a partial entry, as Docker does.
			pl.buf = append(pl.buf, p[:room]...)
			w.enc = appendEntry(w.enc, stream, pl.buf, pl.t)
			pl.buf = pl.buf[:0]
			p = p[room:]
		default:
			pl.buf = append(pl.buf, p...)
			p = nil
		}
		// Flush as we go so a burst of many lines never grows the buffer past a few entries.
		if len(w.enc) >= 32*1024 {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	if len(pl.buf) == 0 && cap(pl.buf) > 0 {
		pl.buf = nil // an idle container holds no line buffer
	}
	return w.flush()
}

func (w *Writer) flush() error {
	if len(w.enc) == 0 {
		return nil
	}
	_, err := w.f.Write(w.enc)
	w.enc = w.enc[:0]
	if cap(w.enc) > 256*1024 {
		w.enc = nil // a burst of escaped output must not stay allocated for the container's life
	}
	return err
}

// Close writes any unfinished lines as entries without a newline and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	w.enc = w.enc[:0]
	for _, stream := range []string{"stdout", "stderr"} {
		if pl := w.pending[stream]; pl != nil && len(pl.buf) > 0 {
			w.enc = appendEntry(w.enc, stream, pl.buf, pl.t)
		}
	}
	for stream, pl := range w.pending {
		if stream != "stdout" && stream != "stderr" && len(pl.buf) > 0 {
			w.enc = appendEntry(w.enc, stream, pl.buf, pl.t)
		}
	}
	err := w.flush()
	w.enc, w.pending = nil, nil
	return errors.Join(err, w.f.Close())
}

func appendEntry(dst []byte, stream string, msg []byte, t time.Time) []byte {
	dst = append(dst, `{"log":`...)
	dst = appendJSONString(dst, msg)
	dst = append(dst, `,"stream":`...)
	dst = appendJSONString(dst, []byte(stream))
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}\n"...)
}
