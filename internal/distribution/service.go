package distribution

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/reference"
	"github.com/docker/docker/pkg/jsonmessage"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Images is what pull and push need of the image store.
type Images interface {
	StoreRemote(ctx context.Context, config []byte, layers []image.RemoteLayer, tag reference.Named, canonical reference.Canonical) (digest.Digest, error)
	LayersPresent(ctx context.Context, diffIDs []digest.Digest) []bool
	Resolved(ref reference.Named) digest.Digest
	Get(ctx context.Context, ref string) (*image.Image, error)
	ConfigBytes(id digest.Digest) ([]byte, error)
	OpenLayer(diffID digest.Digest) (io.ReadCloser, error)
	Pushed(id digest.Digest, tag reference.Named, c reference.Canonical) error
	RepoTags(repo reference.Named) []reference.Named
}

// Config is what the service is built from.
type Config struct {
	Root     string // data root; downloads go to <Root>/pulls
	DB       *bolt.DB
	Images   Images
	Insecure []string // --insecure-registry: host[:port] or CIDR
	Mirrors  []string // --registry-mirror, for Docker Hub
	CertsDir string   // <dir>/<host[:port]>/{ca.crt,client.cert,client.key}
	// MaxDownloads and MaxUploads bound the parallel blob transfers of one pull or push.
	MaxDownloads int
	MaxUploads   int
}

// Progress receives the messages the docker CLI renders: per-layer status lines and progress bars.
type Progress func(jsonmessage.JSONMessage)

// Service pulls, pushes and logs in.
type Service struct {
	cfg   Config
	pulls string

	// blobLocks serialises two pulls fetching the same blob into the same file.
	blobMu    sync.Mutex
	blobLocks map[digest.Digest]*sync.Mutex
}

var bucketBlobs = []byte("distribution")

// partialMaxAge is how long an interrupted download is kept for a later pull to resume.
const partialMaxAge = 7 * 24 * time.Hour

// New opens the service, dropping interrupted downloads too old to be resumed usefully.
func New(cfg Config) (*Service, error) {
	if cfg.MaxDownloads <= 0 {
		cfg.MaxDownloads = 3
	}
	if cfg.MaxUploads <= 0 {
		cfg.MaxUploads = 5
	}
	s := &Service{cfg: cfg, pulls: filepath.Join(cfg.Root, "pulls"), blobLocks: map[digest.Digest]*sync.Mutex{}}
	if err := os.MkdirAll(s.pulls, 0o700); err != nil {
		return nil, errdefs.System(err)
	}
	entries, _ := os.ReadDir(s.pulls)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > partialMaxAge {
			os.Remove(filepath.Join(s.pulls, e.Name()))
		}
	}
	if err := cfg.DB.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketBlobs)
		return err
	}); err != nil {
		return nil, errdefs.System(err)
	}
	return s, nil
}

func (s *Service) lockBlob(d digest.Digest) func() {
	s.blobMu.Lock()
	l := s.blobLocks[d]
	if l == nil {
		l = &sync.Mutex{}
		s.blobLocks[d] = l
	}
	s.blobMu.Unlock()
	l.Lock()
	return l.Unlock
}

// knownBlob is a compressed form of a layer some registry repository is known to hold.
type knownBlob struct {
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	MediaType string        `json:"mediaType"`
	Host      string        `json:"host"`
	Repo      string        `json:"repo"`
}

func (s *Service) knownBlobs(diffID digest.Digest) []knownBlob {
	var out []knownBlob
	s.cfg.DB.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketBlobs).Get([]byte(diffID)); v != nil {
			json.Unmarshal(v, &out)
		}
		return nil
	})
	return out
}

// remember records that host/repo holds blob b for layer diffID. The list per layer stays short: one
// entry per repository.
func (s *Service) remember(diffID digest.Digest, b knownBlob) {
	s.cfg.DB.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketBlobs)
		var list []knownBlob
		if v := bk.Get([]byte(diffID)); v != nil {
			json.Unmarshal(v, &list)
		}
		out := list[:0]
		for _, k := range list {
			if k.Host != b.Host || k.Repo != b.Repo {
				out = append(out, k)
			}
		}
		out = append(out, b)
		if len(out) > 32 {
			out = out[len(out)-32:]
		}
		v, err := json.Marshal(out)
		if err != nil {
			return err
		}
		return bk.Put([]byte(diffID), v)
	})
}

// progress serialises messages from parallel transfers and thins out byte counts.
type progress struct {
	mu   sync.Mutex
	out  Progress
	last map[string]time.Time
}

func newProgress(out Progress) *progress {
	if out == nil {
		out = func(jsonmessage.JSONMessage) {}
	}
	return &progress{out: out, last: map[string]time.Time{}}
}

func (p *progress) status(id, status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := jsonmessage.JSONMessage{ID: id, Status: status}
	if id != "" {
		m.Progress = &jsonmessage.JSONProgress{}
	}
	p.out(m)
}

func (p *progress) line(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out(jsonmessage.JSONMessage{Status: fmt.Sprintf(format, args...)})
}

func (p *progress) aux(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	raw := json.RawMessage(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out(jsonmessage.JSONMessage{Aux: &raw})
}

// bytes reports a transfer's progress at most every 100 ms per id, and always the last byte.
func (p *progress) bytes(id, status string, cur, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := id + status
	if cur < total && time.Since(p.last[key]) < 100*time.Millisecond {
		return
	}
	p.last[key] = time.Now()
	jp := &jsonmessage.JSONProgress{Current: cur, Total: total}
	p.out(jsonmessage.JSONMessage{ID: id, Status: status, Progress: jp, ProgressMessage: jp.String()})
}

func shortDigest(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}
