package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/docker/docker/pkg/jsonmessage"
)

// jsonStream writes Docker's JSON message stream. The status line goes out with the first message, so a
// backend that fails before saying anything still gets a real error status, which the SDK reports directly
// instead of leaving it for the caller to find in the stream.
type jsonStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	enc     *json.Encoder
	started bool
	err     error // first write error; the client has gone, so later messages are dropped
}

func newJSONStream(w http.ResponseWriter) *jsonStream {
	return &jsonStream{w: w, rc: http.NewResponseController(w), enc: json.NewEncoder(w)}
}

func (s *jsonStream) start() {
	if s.started {
		return
	}
	s.started = true
	s.w.Header().Set("Content-Type", "application/json")
	s.w.WriteHeader(http.StatusOK)
}

func (s *jsonStream) send(m jsonmessage.JSONMessage) {
	if s.err != nil {
		return
	}
	s.start()
	if s.err = s.enc.Encode(m); s.err == nil {
		_ = s.rc.Flush()
	}
}

// streamLine sends one line of user-facing text as a {"stream": ...} message.
func (s *jsonStream) streamLine(line string) {
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	s.send(jsonmessage.JSONMessage{Stream: line})
}

// finish ends the stream after the backend returned err. Before the first message the error is handed back
// to become an ordinary error response; after it, it goes into the stream, where the CLI shows it.
func (s *jsonStream) finish(err error) error {
	if err == nil {
		s.start()
		return nil
	}
	if !s.started {
		return err
	}
	s.send(jsonmessage.JSONMessage{
		Error:        &jsonmessage.JSONError{Message: err.Error()},
		ErrorMessage: err.Error(), //nolint:staticcheck // older clients read only "error"
	})
	return nil
}

// lazyWriter sends the status line and contentType on the first byte, so an error before any output can
// still be an error response.
type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.Header().Set("Content-Type", l.contentType)
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// flushWriter pushes every write to the client at once: log lines must not sit in a buffer while the
// container is quiet.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func newFlushWriter(w http.ResponseWriter) *flushWriter {
	return &flushWriter{w: w, rc: http.NewResponseController(w)}
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, err
	}
	return n, f.rc.Flush()
}
