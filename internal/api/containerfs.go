package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
)

// ExtractOptions are the options of PUT /containers/{id}/archive.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID gives the extracted files the container user's uid and gid.
	CopyUIDGID bool
}

// CommitOptions are the options of POST /commit.
type CommitOptions struct {
	Ref     string // repository[:tag]; "" leaves the image untagged
	Comment string
	Author  string
	Changes []string // Dockerfile instructions applied to the image config
	Pause   bool
	Config  *container.Config // overrides from the request body; nil when there is none
}

// FilesystemBackend is what the cp, diff, commit and export routes need. The container backend
// provides it when it can; the routes answer 501 when it does not. Paths are resolved inside the
// container's root filesystem.
type FilesystemBackend interface {
	// StatPath describes path without following a final symlink.
	StatPath(ctx context.Context, id, path string) (container.PathStat, error)
	// ArchivePath returns a tar of path and its stat; the caller closes the reader.
	ArchivePath(ctx context.Context, id, path string) (io.ReadCloser, container.PathStat, error)
	// ExtractToDir extracts the tar src into the directory path.
	ExtractToDir(ctx context.Context, id, path string, opts ExtractOptions, src io.Reader) error
	// Changes lists the changes in the container's writable layer.
	Changes(ctx context.Context, id string) ([]container.FilesystemChange, error)
	// Export returns the container's root filesystem as a tar; the caller closes the reader.
	Export(ctx context.Context, id string) (io.ReadCloser, error)
	// Commit makes an image of the container and returns its ID.
	Commit(ctx context.Context, id string, opts CommitOptions) (string, error)
}

// filesystemRoutes are the routes served from FilesystemBackend.
func (s *Server) filesystemRoutes() []route {
	return []route{
		named(http.MethodHead, "/containers/", "/archive", s.containerArchiveHead),
		named(http.MethodGet, "/containers/", "/archive", s.containerArchiveGet),
		named(http.MethodPut, "/containers/", "/archive", s.containerArchivePut),
		named(http.MethodGet, "/containers/", "/changes", s.containerChanges),
		named(http.MethodGet, "/containers/", "/export", s.containerExport),
		fixed(http.MethodPost, "/commit", s.commit),
	}
}

func (s *Server) filesystem() (FilesystemBackend, error) {
	if fb, ok := s.containers.(FilesystemBackend); ok {
		return fb, nil
	}
	return nil, errNoBackend("container filesystem")
}

const pathStatHeader = "X-Docker-Container-Path-Stat"

func setPathStat(h http.Header, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	h.Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
	return nil
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.InvalidParameter(errors.New("path must not be empty"))
	}
	return p, nil
}

// containerArchiveHead serves HEAD /containers/{id}/archive?path=p: the stat header only.
func (s *Server) containerArchiveHead(w http.ResponseWriter, r *http.Request, id string) error {
	fb, err := s.filesystem()
	if err != nil {
		return err
	}
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := fb.StatPath(r.Context(), id, p)
	if err != nil {
		return err
	}
	if err := setPathStat(w.Header(), st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// containerArchiveGet serves GET /containers/{id}/archive?path=p: a tar of p, its stat in a header.
func (s *Server) containerArchiveGet(w http.ResponseWriter, r *http.Request, id string) error {
	fb, err := s.filesystem()
	if err != nil {
		return err
	}
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	rc, st, err := fb.ArchivePath(r.Context(), id, p)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := setPathStat(w.Header(), st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, rc)
	return err
}

// containerArchivePut serves PUT /containers/{id}/archive?path=p&noOverwriteDirNonDir=&copyUIDGID=.
func (s *Server) containerArchivePut(w http.ResponseWriter, r *http.Request, id string) error {
	fb, err := s.filesystem()
	if err != nil {
		return err
	}
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	opts := ExtractOptions{NoOverwriteDirNonDir: queryBool(r, "noOverwriteDirNonDir"), CopyUIDGID: queryBool(r, "copyUIDGID")}
	if err := fb.ExtractToDir(r.Context(), id, p, opts, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// containerChanges serves GET /containers/{id}/changes.
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request, id string) error {
	fb, err := s.filesystem()
	if err != nil {
		return err
	}
	changes, err := fb.Changes(r.Context(), id)
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []container.FilesystemChange{}
	}
	return writeJSON(w, http.StatusOK, changes)
}

// containerExport serves GET /containers/{id}/export.
func (s *Server) containerExport(w http.ResponseWriter, r *http.Request, id string) error {
	fb, err := s.filesystem()
	if err != nil {
		return err
	}
	rc, err := fb.Export(r.Context(), id)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, rc)
	return err
}

// commit serves POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=, with an optional
// container config in the body.
func (s *Server) commit(w http.ResponseWriter, r *http.Request, _ string) error {
	fb, err := s.filesystem()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	ref := q.Get("repo")
	if tag := q.Get("tag"); tag != "" {
		if ref == "" {
			return errdefs.InvalidParameter(errors.New("tag is specified without a repository"))
		}
		ref += ":" + tag
	}
	opts := CommitOptions{Ref: ref, Comment: q.Get("comment"), Author: q.Get("author"), Changes: q["changes"], Pause: queryBool(r, "pause")}
	// Pausing is the default since API 1.13, older than any version we serve: absent means yes.
	if q.Get("pause") == "" {
		opts.Pause = true
	}
	if r.Body != nil && r.Body != http.NoBody {
		var cfg container.Config
		err := json.NewDecoder(r.Body).Decode(&cfg)
		switch {
		case err == nil:
			opts.Config = &cfg
		case errors.Is(err, io.EOF):
		default:
			return errdefs.InvalidParameter(fmt.Errorf("invalid JSON in request body: %w", err))
		}
	}
	id, err := fb.Commit(r.Context(), q.Get("container"), opts)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
}
