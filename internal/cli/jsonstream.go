package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// jsonMessage is one line of the progress streams import/load/pull send.
type jsonMessage struct {
	Stream   string `json:"stream,omitempty"`
	Status   string `json:"status,omitempty"`
	Progress string `json:"progress,omitempty"`
	ID       string `json:"id,omitempty"`
	Error    *struct {
		Message string `json:"message,omitempty"`
	} `json:"errorDetail,omitempty"`
	ErrorMessage string `json:"error,omitempty"`
}

// displayJSONStream prints a progress stream as plain lines (berth does not draw progress bars) and
// returns the first error the daemon reported in it. quiet keeps only "stream" output and errors.
func displayJSONStream(r io.Reader, w io.Writer, quiet bool) error {
	dec := json.NewDecoder(r)
	for {
		var m jsonMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != nil && m.Error.Message != "" {
			return errors.New(m.Error.Message)
		}
		if m.ErrorMessage != "" {
			return errors.New(m.ErrorMessage)
		}
		if m.Stream != "" {
			fmt.Fprint(w, m.Stream)
			continue
		}
		if quiet || m.Progress != "" {
			continue
		}
		if m.Status != "" {
			if m.ID != "" {
				fmt.Fprintf(w, "%s: %s\n", m.ID, m.Status)
			} else {
				fmt.Fprintln(w, m.Status)
			}
		}
	}
}
