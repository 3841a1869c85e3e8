package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
)

// errorBody is Docker's error response ({"message": "..."}), kept unexported because the SDK only reads it.
type errorBody struct {
	Message string `json:"message"`
}

// writeError answers with the status of err's kind and Docker's error body. Internal errors are logged,
// since the client may not show enough to debug them.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status := errdefs.HTTPStatus(err)
	if status == http.StatusInternalServerError {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	if status == http.StatusNotModified {
		w.WriteHeader(status) // a 304 has no body
		return
	}
	writeJSON(w, status, errorBody{Message: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

func errNoBackend(what string) error {
	return errdefs.NotImplemented(fmt.Errorf("the %s service is not available in this daemon", what))
}

// decodeBody decodes a JSON request body into v; a malformed body is the client's fault (400).
func decodeBody(r *http.Request, v any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return errdefs.InvalidParameter(errors.New("request body is empty"))
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid JSON in request body: %w", err))
	}
	return nil
}

// queryBool reads a boolean query parameter the way Docker does: absent, "", "0", "no", "false" and
// "none" are false; anything else is true.
func queryBool(r *http.Request, key string) bool {
	switch strings.ToLower(strings.TrimSpace(r.URL.Query().Get(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// queryInt reads an integer query parameter; ok is false when it is absent or empty.
func queryInt(r *http.Request, key string) (n int, ok bool, err error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return 0, false, nil
	}
	n, err = strconv.Atoi(s)
	if err != nil {
		return 0, false, errdefs.InvalidParameter(fmt.Errorf("invalid value for %s: %q", key, s))
	}
	return n, true, nil
}

func queryFilters(r *http.Request) (filters.Args, error) {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return f, errdefs.InvalidParameter(fmt.Errorf("invalid filters: %w", err))
	}
	return f, nil
}
