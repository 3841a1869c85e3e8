package api

import (
	"net/http"
	"strings"
	"time"
)

// handlerFunc serves one route. name is the path variable ("" for fixed routes). An error returned before the
// response header is written becomes the error response; after that it can only be logged.
type handlerFunc func(w http.ResponseWriter, r *http.Request, name string) error

// route matches prefix + name + suffix. Image names contain slashes ("localhost:5000/a/b:1"), so a route may
// let its name span segments; ServeMux patterns cannot express "/images/{name...}/json".
type route struct {
	method string
	prefix string
	suffix string
	hasVar bool // the path has a name between prefix and suffix
	multi  bool // the name may contain '/'
	h      handlerFunc
}

func fixed(method, path string, h handlerFunc) route {
	return route{method: method, prefix: path, h: h}
}

// named is a route with a one-segment name: prefix{name}suffix.
func named(method, prefix, suffix string, h handlerFunc) route {
	return route{method: method, prefix: prefix, suffix: suffix, hasVar: true, h: h}
}

// imageNamed is a route whose name may hold slashes. Fixed routes come first in the table, so
// "/images/json" lists images rather than deleting an image called "json", as in Docker.
func imageNamed(method, suffix string, h handlerFunc) route {
	return route{method: method, prefix: "/images/", suffix: suffix, hasVar: true, multi: true, h: h}
}

func (rt route) match(method, path string) (string, bool) {
	if rt.method != method {
		return "", false
	}
	if !rt.hasVar {
		return "", path == rt.prefix
	}
	if len(path) <= len(rt.prefix)+len(rt.suffix) || !strings.HasPrefix(path, rt.prefix) || !strings.HasSuffix(path, rt.suffix) {
		return "", false
	}
	name := path[len(rt.prefix) : len(path)-len(rt.suffix)]
	if !rt.multi && strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}

func (s *Server) routeTable() []route {
	return []route{
		fixed(http.MethodGet, "/_ping", s.ping),
		fixed(http.MethodHead, "/_ping", s.ping),
		fixed(http.MethodGet, "/version", s.getVersion),
		fixed(http.MethodGet, "/info", s.getInfo),
		fixed(http.MethodPost, "/auth", s.authLogin),

		fixed(http.MethodPost, "/images/create", s.imageCreate),
		fixed(http.MethodPost, "/images/load", s.imageLoad),
		fixed(http.MethodGet, "/images/get", s.imageSave),
		fixed(http.MethodGet, "/images/json", s.imageList),
		fixed(http.MethodPost, "/images/prune", s.imagePrune),
		imageNamed(http.MethodGet, "/get", s.imageSaveOne),
		imageNamed(http.MethodPost, "/tag", s.imageTag),
		imageNamed(http.MethodPost, "/push", s.imagePush),
		imageNamed(http.MethodGet, "/history", s.imageHistory),
		imageNamed(http.MethodGet, "/json", s.imageInspect),
		imageNamed(http.MethodDelete, "", s.imageRemove),

		fixed(http.MethodGet, "/networks", s.networkList),
		fixed(http.MethodPost, "/networks/create", s.networkCreate),
		fixed(http.MethodPost, "/networks/prune", s.networkPrune),
		named(http.MethodGet, "/networks/", "", s.networkInspect),
		named(http.MethodDelete, "/networks/", "", s.networkRemove),
		named(http.MethodPost, "/networks/", "/connect", s.networkConnect),
		named(http.MethodPost, "/networks/", "/disconnect", s.networkDisconnect),

		fixed(http.MethodPost, "/containers/create", s.containerCreate),
		fixed(http.MethodGet, "/containers/json", s.containerList),
		fixed(http.MethodPost, "/containers/prune", s.containerPrune),
		named(http.MethodPost, "/containers/", "/start", s.containerStart),
		named(http.MethodPost, "/containers/", "/stop", s.containerStop),
		named(http.MethodPost, "/containers/", "/kill", s.containerKill),
		named(http.MethodPost, "/containers/", "/wait", s.containerWait),
		named(http.MethodPost, "/containers/", "/rename", s.containerRename),
		named(http.MethodPost, "/containers/", "/resize", s.containerResize),
		named(http.MethodPost, "/containers/", "/attach", s.containerAttach),
		named(http.MethodPost, "/containers/", "/exec", s.containerExecCreate),
		named(http.MethodPost, "/exec/", "/start", s.execStart),
		named(http.MethodGet, "/exec/", "/json", s.execInspect),
		named(http.MethodPost, "/exec/", "/resize", s.execResize),
		named(http.MethodGet, "/containers/", "/json", s.containerInspect),
		named(http.MethodGet, "/containers/", "/logs", s.containerLogs),
		named(http.MethodDelete, "/containers/", "", s.containerRemove),
	}
}

// withLogging logs every request at debug level, versioned path and all, with the status it got.
func (s *Server) withLogging(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		defer func() {
			s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
				"status", rec.status, "duration", time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

// dispatch finds the route for an (unversioned) request and runs it.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	rec, ok := w.(*recorder)
	if !ok {
		rec = &recorder{ResponseWriter: w}
	}
	for _, rt := range s.routes {
		name, ok := rt.match(r.Method, r.URL.Path)
		if !ok {
			continue
		}
		if err := rt.h(rec, r, name); err != nil {
			if rec.status != 0 {
				s.log.Warn("api stream failed", "method", r.Method, "path", r.URL.Path, "error", err)
				return
			}
			s.writeError(rec, r, err)
		}
		return
	}
	writeJSON(rec, http.StatusNotFound, errorBody{Message: "page not found"})
}

// recorder remembers the status a handler sent, for the request log and to know whether an error can still
// become an error response. Unwrap lets http.ResponseController reach Flush and Hijack underneath.
type recorder struct {
	http.ResponseWriter
	status int
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
