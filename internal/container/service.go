package container

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/userns"
	bolt "go.etcd.io/bbolt"
)

// Config is what the service is built from.
type Config struct {
	Root     string // <data-root>/containers: per-container files that persist (logs, hostname, hosts)
	ExecRoot string // <exec-root>/containers: bundles and rootfs mount points, gone at reboot
	DB       *bolt.DB
	Images   ImageResolver
	Rootfs   RootfsManager
	Monitor  Monitor
	// DefaultRuntime is used when a container names none ("" means Berth's own).
	DefaultRuntime string
	// Runtimes maps --runtime names to OCI runtime binaries ("runc" -> "/usr/sbin/runc").
	Runtimes map[string]string
	// InitBinary is the static binary bind-mounted as the container's /sbin/docker-init for --init;
	// "" makes --init fail.
	InitBinary string
	// Networks gives containers their network; nil leaves each with a loopback-only namespace.
	Networks Networks
	Logger   *slog.Logger
	// Events, when set, is told about container lifecycle changes (create, start, die, destroy, ...).
	Events func(action, id string, attrs map[string]string)
	// Volumes provides named and anonymous volumes; nil makes any volume mount fail.
	Volumes VolumeStore
	// Remap is the daemon's --userns-remap; nil runs every container in the host's user namespace.
	Remap *userns.Remap
}

// Service manages containers.
type Service struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	byID  map[string]*ctr
	names map[string]string // name -> id
	// meta holds what every event about a container carries (name, image, labels). It lives under s.mu,
	// not c.mu, because events are sent from code that holds c.mu.
	meta map[string]eventMeta
}

type eventMeta struct {
	name, image string
	labels      map[string]string
}

// New loads every container record and returns the service. Call Restore to reconcile them with the
// monitor before serving requests.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, d := range []string{cfg.Root, cfg.ExecRoot} {
		if err := os.MkdirAll(d, 0o710); err != nil {
			return nil, err
		}
	}
	s := &Service{cfg: cfg, log: cfg.Logger, byID: map[string]*ctr{}, names: map[string]string{}, meta: map[string]eventMeta{}}
	recs, err := loadRecords(cfg.DB)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		c := &ctr{rec: r}
		s.byID[r.ID] = c
		s.names[r.Name] = r.ID
		s.meta[r.ID] = metaOf(&r)
		if cfg.Volumes != nil {
			for _, n := range volumeNames(&r) {
				cfg.Volumes.Retain(n, r.ID)
			}
		}
	}
	return s, nil
}

// event reports a container event with Docker's attributes: the container's labels, image and name,
// then attrs (exitCode, signal, ...) on top.
func (s *Service) event(action, id string, attrs map[string]string) {
	if s.cfg.Events == nil {
		return
	}
	s.mu.Lock()
	m, ok := s.meta[id]
	s.mu.Unlock()
	out := map[string]string{}
	if ok {
		for k, v := range m.labels {
			out[k] = v
		}
		out["image"] = m.image
		out["name"] = m.name
	}
	for k, v := range attrs {
		out[k] = v
	}
	s.cfg.Events(action, id, out)
}

func metaOf(r *record) eventMeta {
	m := eventMeta{name: r.Name, image: r.ImageRef}
	if r.Config != nil {
		m.labels = r.Config.Labels
	}
	return m
}

// setMeta records (or, with r nil, forgets) what events about id carry.
func (s *Service) setMeta(id string, r *record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r == nil {
		delete(s.meta, id)
		return
	}
	s.meta[id] = metaOf(r)
}

// get finds a container by full ID, name (with or without "/") or unique ID prefix.
func (s *Service) get(ref string) (*ctr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ref == "" {
		return nil, errdefs.InvalidParameter(fmt.Errorf("container name or ID cannot be empty"))
	}
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	if id, ok := s.names[strings.TrimPrefix(ref, "/")]; ok {
		return s.byID[id], nil
	}
	var found *ctr
	for id, c := range s.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("multiple IDs found with provided prefix: %s", ref))
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.NotFound(fmt.Errorf("No such container: %s", ref))
	}
	return found, nil
}

func (s *Service) all() []*ctr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*ctr, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.Created.After(out[j].rec.Created) })
	return out
}

// ContainersUsing lists the containers (running and not running) made from imageID; the image service
// asks before deleting an image.
func (s *Service) ContainersUsing(imageID string) (running, stopped []string) {
	for _, c := range s.all() {
		c.mu.Lock()
		if c.rec.ImageID == imageID {
			if c.running() {
				running = append(running, c.rec.ID)
			} else {
				stopped = append(stopped, c.rec.ID)
			}
		}
		c.mu.Unlock()
	}
	return running, stopped
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// reserveName claims name for id, or says who has it.
func (s *Service) reserveName(name, id string) error {
	if !validName.MatchString(name) {
		return errdefs.InvalidParameter(fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	name = strings.TrimPrefix(name, "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	if other, ok := s.names[name]; ok {
		return errdefs.Conflict(fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other))
	}
	s.names[name] = id
	return nil
}

func (s *Service) releaseName(name, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names[name] == id {
		delete(s.names, name)
	}
}

func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // the kernel's random source does not fail
	}
	return hex.EncodeToString(b)
}

func (s *Service) bundleDir(id string) string { return filepath.Join(s.cfg.ExecRoot, id) }
func (s *Service) rootfsDir(id string) string { return filepath.Join(s.cfg.ExecRoot, id, "rootfs") }
func (s *Service) dataDir(id string) string   { return filepath.Join(s.cfg.Root, id) }

// Counts returns how many containers are running, paused and stopped, for `docker info`.
func (s *Service) Counts() (running, paused, stopped int) {
	for _, c := range s.all() {
		c.mu.Lock()
		switch c.rec.State.status() {
		case "running", "restarting":
			running++
		case "paused":
			paused++
		default:
			stopped++
		}
		c.mu.Unlock()
	}
	return running, paused, stopped
}
