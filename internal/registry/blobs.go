package registry

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// blob serves GET/HEAD/DELETE /v2/<name>/blobs/<digest>.
func (s *server) blob(w http.ResponseWriter, r *http.Request, name, ref string) error {
	d, err := parseDigest(ref)
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		f, err := s.store.openBlob(name, d)
		if err != nil {
			return err
		}
		defer f.Close()
		h := w.Header()
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Docker-Content-Digest", d.String())
		h.Set("ETag", `"`+d.String()+`"`)
		h.Set("Cache-Control", "max-age=31536000")
		// ServeContent does Range and HEAD, and on a plain TCP connection copies the *os.File with
		// sendfile(2): the blob never passes through user space.
		http.ServeContent(w, r, "", time.Time{}, f)
		return nil
	case http.MethodDelete:
		if err := s.store.unlinkBlob(name, d); err != nil {
			return err
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return errMethod()
}

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

// setUploadHeaders tells the client where the upload is and how much of it the server holds.
func setUploadHeaders(w http.ResponseWriter, name, id string, size int64) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, id))
	end := size - 1
	if end < 0 {
		end = 0
	}
	h.Set("Range", fmt.Sprintf("0-%d", end))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Content-Length", "0")
}

func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/blobs/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// uploadRoute serves /v2/<name>/blobs/uploads/ and /v2/<name>/blobs/uploads/<id>.
func (s *server) uploadRoute(w http.ResponseWriter, r *http.Request, name, id string) error {
	if id == "" {
		if r.Method != http.MethodPost {
			return errMethod()
		}
		return s.startUpload(w, r, name)
	}
	switch r.Method {
	case http.MethodGet:
		size, err := s.store.uploadSize(name, id)
		if err != nil {
			return err
		}
		setUploadHeaders(w, name, id, size)
		w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodPatch:
		start, err := contentRangeStart(r)
		if err != nil {
			return err
		}
		size, err := s.store.appendUpload(name, id, start, r.Body)
		setUploadHeaders(w, name, id, size)
		if err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	case http.MethodPut:
		d, err := parseDigest(r.URL.Query().Get("digest"))
		if err != nil {
			return err
		}
		start, err := contentRangeStart(r)
		if err != nil {
			return err
		}
		if err := s.store.commitUpload(name, id, d, start, r.Body); err != nil {
			return err
		}
		blobCreated(w, name, d)
		return nil
	case http.MethodDelete:
		if err := s.store.cancelUpload(name, id); err != nil {
			return err
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return errMethod()
}

// startUpload is POST /v2/<name>/blobs/uploads/: a cross-repository mount, a monolithic upload
// (?digest=), or the start of an upload session.
func (s *server) startUpload(w http.ResponseWriter, r *http.Request, name string) error {
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			return err
		}
		// From the repository the client named (which auth checked it may pull from) or, without
		// "from", from any repository that holds the blob: every user who passes auth may pull every
		// repository, so that reveals nothing the client could not read anyway. A blob deleted from
		// every repository stays unmountable even before GC removes its bytes.
		from := q.Get("from")
		ok := from != "" && nameRE.MatchString(from) && s.store.hasBlob(from, d)
		if from == "" {
			ok = s.store.linkedAnywhere(d)
		}
		if ok {
			if err := s.store.link(name, d); err != nil {
				return err
			}
			blobCreated(w, name, d)
			return nil
		}
		// Unknown blob: a normal upload session, as the spec asks.
	} else if dg := q.Get("digest"); dg != "" {
		d, err := parseDigest(dg)
		if err != nil {
			return err
		}
		if err := s.store.putBlob(name, d, r.Body); err != nil {
			return err
		}
		blobCreated(w, name, d)
		return nil
	}
	id, err := s.store.startUpload(name)
	if err != nil {
		return err
	}
	setUploadHeaders(w, name, id, 0)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// contentRangeStart returns where a chunk says it starts, or -1 without a Content-Range. Clients send
// "<start>-<end>" (the spec) or "bytes <start>-<end>/<total>" (HTTP style); both are taken.
func contentRangeStart(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("Content-Range"))
	if v == "" {
		return -1, nil
	}
	v = strings.TrimPrefix(v, "bytes ")
	v, _, _ = strings.Cut(v, "/")
	a, b, ok := strings.Cut(v, "-")
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || start < 0 || end < start-1 {
		return 0, errf(http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, "invalid Content-Range "+strconv.Quote(r.Header.Get("Content-Range")))
	}
	if r.ContentLength >= 0 && end-start+1 != r.ContentLength {
		return 0, errf(http.StatusRequestedRangeNotSatisfiable, codeRangeInvalid, "Content-Range does not match Content-Length")
	}
	return start, nil
}
