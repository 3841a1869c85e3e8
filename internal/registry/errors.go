package registry

import (
	"encoding/json"
	"net/http"
)

// Error codes of the distribution spec (plus the ones docker's registry adds and clients know).
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeDenied              = "DENIED"
	codeUnsupported         = "UNSUPPORTED"
	codeRangeInvalid        = "RANGE_INVALID"
	codeTagInvalid          = "TAG_INVALID"
)

// regError is an error with its spec code and HTTP status; handlers return it and writeError renders
// it in the spec's JSON form, in one place.
type regError struct {
	status  int
	code    string
	message string
	detail  any
}

func (e *regError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, message string) *regError {
	return &regError{status: status, code: code, message: message}
}

func (e *regError) with(detail any) *regError {
	c := *e
	c.detail = detail
	return &c
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError renders err; anything that is not a regError is an internal error (500, UNKNOWN) whose
// text is still shown, since registries have no other channel for it.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	re, ok := err.(*regError)
	if !ok {
		re = &regError{status: http.StatusInternalServerError, code: "UNKNOWN", message: err.Error()}
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: re.code, Message: re.message, Detail: re.detail}}})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	h.Del("Docker-Content-Digest")
	w.WriteHeader(re.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}
