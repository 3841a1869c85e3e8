package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/volume"
	bolt "go.etcd.io/bbolt"
)

// AnonymousLabel marks volumes made for a container's unnamed mount (-v /path, an image VOLUME), as
// Docker does; prune without all=true only removes these.
const AnonymousLabel = "com.docker.volume.anonymous"

// DriverLocal is the only driver: directories under the data root, optionally mounted from a device.
const DriverLocal = "local"

var bucket = []byte("volumes")

// Config is what the service is built from.
type Config struct {
	Root   string // <data-root>/volumes
	DB     *bolt.DB
	Logger *slog.Logger
	// Events, when set, is told about create, mount, unmount and destroy.
	Events func(action, name string, attrs map[string]string)
}

// record is what is persisted about a volume.
type record struct {
	Name      string
	Driver    string
	Labels    map[string]string
	Options   map[string]string
	CreatedAt time.Time
}

// Service manages volumes.
type Service struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	vols map[string]*record
	// refs are the containers referencing each volume (created, running or stopped).
	refs map[string]map[string]bool
	// active are the running containers using each volume; a device-backed volume stays mounted while
	// this is not empty.
	active map[string]map[string]bool

	copyMu sync.Mutex // serialises Populate
}

// New loads the volume records.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.Root, 0o701); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger, vols: map[string]*record{}, refs: map[string]map[string]bool{}, active: map[string]map[string]bool{}}
	err := cfg.DB.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("volume %s: corrupt record: %w", k, err)
			}
			s.vols[r.Name] = &r
			return nil
		})
	})
	return s, err
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidName reports whether name may name a local volume.
func ValidName(name string) bool { return validName.MatchString(name) }

func invalidName(name string) error {
	return errdefs.InvalidParameter(fmt.Errorf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name, name))
}

func notFound(name string) error {
	return errdefs.NotFound(fmt.Errorf("get %s: no such volume", name))
}

// Path is where the volume's data lives on the host.
func (s *Service) Path(name string) string { return filepath.Join(s.cfg.Root, name, "_data") }

// CreateOptions describe a new volume.
type CreateOptions struct {
	Name    string // "" makes an anonymous-looking random name
	Driver  string // "" or "local"
	Options map[string]string
	Labels  map[string]string
}

// Create makes a volume, or returns the existing one of that name (Docker's create is idempotent).
func (s *Service) Create(ctx context.Context, o CreateOptions) (volume.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, _, err := s.create(o)
	if err != nil {
		return volume.Volume{}, err
	}
	return s.view(r), nil
}

// create does Create with s.mu held; created says whether the volume is new.
func (s *Service) create(o CreateOptions) (*record, bool, error) {
	if o.Driver == "" {
		o.Driver = DriverLocal
	}
	if o.Name == "" {
		o.Name = randomName()
	}
	if !ValidName(o.Name) {
		return nil, false, invalidName(o.Name)
	}
	if r, ok := s.vols[o.Name]; ok {
		if o.Driver != r.Driver {
			return nil, false, errdefs.Conflict(fmt.Errorf("create %s: volume name must be unique", o.Name))
		}
		return r, false, nil
	}
	if o.Driver != DriverLocal {
		return nil, false, errdefs.NotFound(fmt.Errorf("create %s: error looking up volume plugin %s: plugin %q not found", o.Name, o.Driver, o.Driver))
	}
	if err := validateOptions(o.Options); err != nil {
		return nil, false, errdefs.InvalidParameter(fmt.Errorf("create %s: %w", o.Name, err))
	}
	r := &record{Name: o.Name, Driver: o.Driver, Labels: o.Labels, Options: o.Options, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	if r.Options == nil {
		r.Options = map[string]string{}
	}
	// The directory first: a record always has its directory (see the package doc).
	if err := os.MkdirAll(s.Path(r.Name), 0o755); err != nil {
		return nil, false, errdefs.System(fmt.Errorf("create %s: %w", r.Name, err))
	}
	data, err := json.Marshal(r)
	if err != nil {
		return nil, false, err
	}
	if err := s.cfg.DB.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(r.Name), data)
	}); err != nil {
		_ = os.RemoveAll(filepath.Join(s.cfg.Root, r.Name))
		return nil, false, err
	}
	s.vols[r.Name] = r
	s.event("create", r.Name, map[string]string{"driver": r.Driver})
	return r, true, nil
}

func randomName() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // the kernel's random source does not fail
	}
	return hex.EncodeToString(b)
}

func (s *Service) event(action, name string, attrs map[string]string) {
	if s.cfg.Events != nil {
		s.cfg.Events(action, name, attrs)
	}
}

// view is the API's description of r. s.mu must be held.
func (s *Service) view(r *record) volume.Volume {
	return volume.Volume{
		Name: r.Name, Driver: r.Driver, Mountpoint: s.Path(r.Name), Scope: "local",
		CreatedAt: r.CreatedAt.Format(time.RFC3339), Labels: copyMap(r.Labels), Options: copyMap(r.Options),
	}
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Inspect describes a volume, with UsageData.RefCount set to the number of containers using it (its
// size is not computed: -1, as Docker reports when it has not measured).
func (s *Service) Inspect(ctx context.Context, name string) (volume.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.vols[name]
	if !ok {
		return volume.Volume{}, notFound(name)
	}
	v := s.view(r)
	v.UsageData = &volume.UsageData{RefCount: int64(len(s.refs[name])), Size: -1}
	return v, nil
}

// Users lists the containers referencing a volume.
func (s *Service) Users(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.users(name)
}

func (s *Service) users(name string) []string {
	var out []string
	for id := range s.refs[name] {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Remove deletes a volume and its data. A volume in use is refused with Docker's message; force only
// makes a missing volume not an error.
func (s *Service) Remove(ctx context.Context, name string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vols[name]; !ok {
		if force {
			return nil
		}
		return notFound(name)
	}
	if users := s.users(name); len(users) > 0 {
		return errdefs.Conflict(fmt.Errorf("remove %s: volume is in use - [%s]", name, strings.Join(users, ", ")))
	}
	_, err := s.remove(name)
	return err
}

// remove deletes an unused volume with s.mu held and returns the bytes it freed (for prune).
func (s *Service) remove(name string) (uint64, error) {
	dir := filepath.Join(s.cfg.Root, name)
	r := s.vols[name]
	if hasDevice(r.Options) {
		if err := unmountData(s.Path(name)); err != nil {
			return 0, errdefs.System(fmt.Errorf("remove %s: %w", name, err))
		}
	}
	// The record goes first: a crash after it leaves a directory without record, which is harmless and
	// reused by a later create of the same name; the reverse would show a volume without data.
	if err := s.cfg.DB.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(name))
	}); err != nil {
		return 0, err
	}
	delete(s.vols, name)
	var size uint64
	if !hasDevice(r.Options) {
		size = diskUsage(s.Path(name))
	}
	if err := os.RemoveAll(dir); err != nil {
		s.log.Warn("removing volume data", "volume", name, "err", err)
	}
	s.event("destroy", name, map[string]string{"driver": r.Driver})
	return size, nil
}

// AcquireOptions say which volume a container wants and how to make it when it does not exist.
type AcquireOptions struct {
	Name      string // "" for a new anonymous volume
	Ref       string // the container's ID
	Labels    map[string]string
	Driver    string
	Options   map[string]string
	Anonymous bool
}

// Acquire finds or creates a volume and records Ref as its user, atomically with respect to Remove. It
// returns the volume's name (chosen here for an anonymous volume) and whether it was created now.
func (s *Service) Acquire(ctx context.Context, o AcquireOptions) (name string, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	labels := copyMap(o.Labels)
	if o.Anonymous {
		labels[AnonymousLabel] = ""
	}
	r, created, err := s.create(CreateOptions{Name: o.Name, Driver: o.Driver, Options: o.Options, Labels: labels})
	if err != nil {
		return "", false, err
	}
	s.retain(r.Name, o.Ref)
	return r.Name, created, nil
}

// Retain records ref as a user of name without checking that the volume exists; berthd calls it for
// every container record when it starts.
func (s *Service) Retain(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retain(name, ref)
}

func (s *Service) retain(name, ref string) {
	if s.refs[name] == nil {
		s.refs[name] = map[string]bool{}
	}
	s.refs[name][ref] = true
}

// Release forgets ref as a user of name.
func (s *Service) Release(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refs[name], ref)
	if len(s.refs[name]) == 0 {
		delete(s.refs, name)
	}
}

// Mount makes the volume's data ready for a container that is starting and returns its host path. For a
// volume with the type/device options that is the first user's mount of the device; otherwise nothing
// happens, which keeps a start with many volumes cheap.
func (s *Service) Mount(ctx context.Context, name, ref string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.vols[name]
	if !ok {
		return "", notFound(name)
	}
	p := s.Path(name)
	if hasDevice(r.Options) {
		if err := mountData(p, r.Options); err != nil {
			return "", errdefs.System(fmt.Errorf("error while mounting volume '%s': %w", p, err))
		}
	}
	if s.active[name] == nil {
		s.active[name] = map[string]bool{}
	}
	s.active[name][ref] = true
	s.event("mount", name, map[string]string{"driver": r.Driver, "container": ref})
	return p, nil
}

// Unmount says ref no longer runs with the volume; the last one out unmounts a device-backed volume, so
// a tmpfs volume's content is gone when its last container stops, as in Docker.
func (s *Service) Unmount(name, ref string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active[name][ref] {
		return
	}
	delete(s.active[name], ref)
	s.event("unmount", name, map[string]string{"driver": DriverLocal, "container": ref})
	if len(s.active[name]) > 0 {
		return
	}
	delete(s.active, name)
	if r, ok := s.vols[name]; ok && hasDevice(r.Options) {
		if err := unmountData(s.Path(name)); err != nil {
			s.log.Warn("unmounting volume", "volume", name, "err", err)
		}
	}
}

// Empty reports whether the volume's data directory holds nothing, which is when a container's first
// use copies the image's content into it.
func (s *Service) Empty(name string) bool {
	f, err := os.Open(s.Path(name))
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// Populate copies src into the volume when the volume is empty (Docker's copy-up on first use); see
// CopyUp for what is copied and what src must be. Concurrent starts sharing a volume copy once.
func (s *Service) Populate(name, src string) error {
	s.copyMu.Lock()
	defer s.copyMu.Unlock()
	s.mu.Lock()
	_, ok := s.vols[name]
	s.mu.Unlock()
	if !ok {
		return notFound(name)
	}
	if !s.Empty(name) {
		return nil
	}
	return CopyUp(src, s.Path(name))
}
