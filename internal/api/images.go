package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
	dimage "github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// imageCreate serves POST /images/create: a pull (fromImage) or the import of a root filesystem tar sent
// as the body (fromSrc=-).
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.images == nil {
		return errNoBackend("image")
	}
	q := r.URL.Query()
	if from := q.Get("fromImage"); from != "" {
		return s.imagePull(w, r, from)
	}
	switch src := q.Get("fromSrc"); src {
	case "-":
	case "":
		return errdefs.InvalidParameter(errors.New("either fromImage or fromSrc must be set"))
	default:
		return errdefs.NotImplemented(fmt.Errorf("importing from a URL is not supported (%s): send the archive as the request body with fromSrc=-", src))
	}
	opts := ImportOptions{Ref: q.Get("repo"), Changes: q["changes"], Message: q.Get("message")}
	if tag := q.Get("tag"); tag != "" && opts.Ref != "" {
		opts.Ref += ":" + tag
	}
	stream := newJSONStream(w)
	id, err := s.images.Import(r.Context(), r.Body, opts)
	if err != nil {
		return stream.finish(err)
	}
	stream.send(jsonmessage.JSONMessage{Status: id.String()})
	return stream.finish(nil)
}

// imageLoad serves POST /images/load. quiet only suppresses progress bars in Docker, and Berth sends none.
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.images == nil {
		return errNoBackend("image")
	}
	stream := newJSONStream(w)
	err := s.images.Load(r.Context(), r.Body, stream.streamLine)
	return stream.finish(err)
}

// imageSave serves GET /images/get?names=a&names=b.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, _ string) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return errdefs.InvalidParameter(errors.New("no image names given to save"))
	}
	return s.save(w, r, names)
}

// imageSaveOne serves GET /images/{name}/get.
func (s *Server) imageSaveOne(w http.ResponseWriter, r *http.Request, name string) error {
	return s.save(w, r, []string{name})
}

func (s *Server) save(w http.ResponseWriter, r *http.Request, names []string) error {
	if s.images == nil {
		return errNoBackend("image")
	}
	lw := &lazyWriter{w: w, contentType: "application/x-tar"}
	err := s.images.Save(r.Context(), names, lw)
	if err != nil && lw.started {
		// Half an archive must not look like a whole one: break the connection so the client sees an error.
		s.log.Warn("image save failed mid-stream", "names", names, "error", err)
		panic(http.ErrAbortHandler)
	}
	if err == nil && !lw.started {
		lw.Write(nil)
	}
	return err
}

// imageTag serves POST /images/{name}/tag?repo=r&tag=t.
func (s *Server) imageTag(w http.ResponseWriter, r *http.Request, name string) error {
	if s.images == nil {
		return errNoBackend("image")
	}
	q := r.URL.Query()
	target := q.Get("repo")
	if target == "" {
		return errdefs.InvalidParameter(errors.New("repository name must be given to tag an image"))
	}
	if tag := q.Get("tag"); tag != "" {
		target += ":" + tag
	}
	if err := s.images.Tag(r.Context(), name, target); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// imageRemove serves DELETE /images/{name}?force&noprune.
func (s *Server) imageRemove(w http.ResponseWriter, r *http.Request, name string) error {
	if s.images == nil {
		return errNoBackend("image")
	}
	deleted, err := s.images.Remove(r.Context(), name, queryBool(r, "force"), queryBool(r, "noprune"))
	if err != nil {
		return err
	}
	if deleted == nil {
		deleted = []dimage.DeleteResponse{}
	}
	return writeJSON(w, http.StatusOK, deleted)
}

// imageList serves GET /images/json?all&filters.
func (s *Server) imageList(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.images == nil {
		return errNoBackend("image")
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	if ref := r.URL.Query().Get("filter"); ref != "" {
		f.Add("reference", ref) // the pre-1.41 way of filtering by name
	}
	list, err := s.images.List(r.Context(), queryBool(r, "all"), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []dimage.Summary{}
	}
	return writeJSON(w, http.StatusOK, list)
}

// imageHistory serves GET /images/{name}/history.
func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, name string) error {
	if s.images == nil {
		return errNoBackend("image")
	}
	history, err := s.images.History(r.Context(), name)
	if err != nil {
		return err
	}
	if history == nil {
		history = []dimage.HistoryResponseItem{}
	}
	return writeJSON(w, http.StatusOK, history)
}

// imageInspect serves GET /images/{name}/json.
func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request, name string) error {
	if s.images == nil {
		return errNoBackend("image")
	}
	img, err := s.images.Inspect(r.Context(), name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, img)
}

// imagePrune serves POST /images/prune?filters.
func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request, _ string) error {
	if s.images == nil {
		return errNoBackend("image")
	}
	f, err := queryFilters(r)
	if err != nil {
		return err
	}
	report, err := s.images.Prune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, report)
}
