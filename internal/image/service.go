package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	"github.com/berth-dev/berth/internal/snapshot"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Config is what the service is built from.
type Config struct {
	Root        string // data root; the service uses <Root>/tmp for archives being loaded
	DB          *bolt.DB
	Content     *content.Store
	Snapshotter snapshot.Snapshotter
	// ContainersUsing lists the containers created from imageID ("sha256:..."), split by whether they
	// run. Set by the daemon; nil means no containers (tests).
	ContainersUsing func(imageID string) (running, stopped []string)
	// Events, when set, is told about image events (import, load, tag, untag, delete, save): the action,
	// the image ID (or reference) and attributes ("name").
	Events func(action, id string, attrs map[string]string)
}

// Service manages images. Writers of new images hold mu for reading while they run, so that Remove
// and Prune (which hold it for writing) never delete a layer an import is about to reference.
type Service struct {
	cfg Config
	mu  sync.RWMutex
}

// Image is what other services need to know about one image.
type Image struct {
	ID       digest.Digest
	Config   dockerspec.DockerOCIImage
	ChainID  string // top layer's chain ID, the snapshot parent for containers; "" when no layers
	RepoTags []string
	// RepoDigests are the "name@sha256:..." references a registry served this image under.
	RepoDigests []string
	Created     time.Time
	Size        int64
	DiffIDs     []digest.Digest
	Parent      digest.Digest // the image this one was committed/built from, if known
}

var (
	bucketImages = []byte("images")
	bucketTags   = []byte("tags")
	// bucketDigests maps "name@digest" (the manifest digest a registry served the image under) to the
	// image ID: Docker's RepoDigests, and what "name@sha256:..." resolves through.
	bucketDigests = []byte("digests")
)

// record is what the images bucket holds per image; the config itself is in the content store.
type record struct {
	DiffIDs    []digest.Digest `json:"diffIDs"`
	LayerSizes []int64         `json:"layerSizes"`
	ConfigSize int64           `json:"configSize"`
	Parent     digest.Digest   `json:"parent,omitempty"`
	Created    time.Time       `json:"created"`
}

func (r record) size() int64 {
	var n int64
	for _, s := range r.LayerSizes {
		n += s
	}
	return n
}

// chainIDs returns the chain ID of every layer, bottom first.
func (r record) chainIDs() []string {
	out := make([]string, len(r.DiffIDs))
	chain := ""
	for i, d := range r.DiffIDs {
		chain = chainOf(chain, d)
		out[i] = chain
	}
	return out
}

// chainOf extends a chain ID by one layer, as image-spec defines it.
func chainOf(parent string, diffID digest.Digest) string {
	if parent == "" {
		return diffID.String()
	}
	return digest.FromString(parent + " " + diffID.String()).String()
}

// New opens the service, creating its buckets and finishing what a crash interrupted.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Content == nil || cfg.Snapshotter == nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("image: DB, Content and Snapshotter are required"))
	}
	if err := cfg.DB.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketTags, bucketDigests} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, errdefs.System(err)
	}
	tmp := filepath.Join(cfg.Root, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, errdefs.System(err)
	}
	if old, _ := filepath.Glob(filepath.Join(tmp, "load-*")); len(old) > 0 {
		for _, p := range old {
			os.RemoveAll(p)
		}
	}
	s := &Service{cfg: cfg}
	if err := s.collectSnapshots(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// collectSnapshots removes what a crash can leave: half-unpacked layers ("extract-" keys) and committed
// layer snapshots that no image names and nothing is built on.
func (s *Service) collectSnapshots(ctx context.Context) error {
	used := map[string]bool{}
	err := s.cfg.DB.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(_, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			for _, c := range r.chainIDs() {
				used[c] = true
			}
			return nil
		})
	})
	if err != nil {
		return errdefs.System(err)
	}
	for {
		var infos []snapshot.Info
		s.cfg.Snapshotter.Walk(ctx, func(i snapshot.Info) error { infos = append(infos, i); return nil })
		parents := map[string]bool{}
		for _, i := range infos {
			parents[i.Parent] = true
		}
		removed := 0
		for _, i := range infos {
			stale := strings.HasPrefix(i.Key, extractPrefix) ||
				(i.Kind == snapshot.KindCommitted && strings.HasPrefix(i.Key, "sha256:") && !used[i.Key] && !parents[i.Key])
			if stale && s.cfg.Snapshotter.Remove(ctx, i.Key) == nil {
				removed++
			}
		}
		if removed == 0 {
			return nil
		}
	}
}

func noSuchImage(ref string) error {
	return errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
}

// resolve finds the image refOrID names, the way Docker does: a full ID ("sha256:<hex>" or <hex>),
// then a tag (defaulting to :latest), then a unique ID prefix. named is the tag used, nil when the
// image was found by ID.
func resolve(tx *bolt.Tx, refOrID string) (id digest.Digest, named reference.Named, err error) {
	images, tags := tx.Bucket(bucketImages), tx.Bucket(bucketTags)
	if d, err := digest.Parse(refOrID); err == nil {
		if images.Get([]byte(d)) == nil {
			return "", nil, noSuchImage(refOrID)
		}
		return d, nil, nil
	}
	if len(refOrID) == 64 && isHex(refOrID) {
		d := digest.NewDigestFromEncoded(digest.SHA256, refOrID)
		if images.Get([]byte(d)) == nil {
			return "", nil, noSuchImage(refOrID)
		}
		return d, nil, nil
	}
	n, perr := reference.ParseNormalizedNamed(refOrID)
	if perr == nil {
		if c, ok := n.(reference.Canonical); ok {
			key := digestKey(c)
			if v := tx.Bucket(bucketDigests).Get([]byte(key)); v != nil {
				named, _ := reference.ParseNormalizedNamed(key)
				return digest.Digest(v), named, nil
			}
		} else {
			n = reference.TagNameOnly(n)
			if v := tags.Get([]byte(n.String())); v != nil {
				return digest.Digest(v), n, nil
			}
		}
	}
	prefix := strings.TrimPrefix(refOrID, "sha256:")
	if prefix != "" && isHex(prefix) {
		var found digest.Digest
		ambiguous := false
		c := images.Cursor()
		seek := []byte("sha256:" + prefix)
		for k, _ := c.Seek(seek); k != nil && strings.HasPrefix(string(k), string(seek)); k, _ = c.Next() {
			if found != "" {
				ambiguous = true
			}
			found = digest.Digest(k)
		}
		if ambiguous {
			return "", nil, errdefs.InvalidParameter(fmt.Errorf("ambiguous image ID prefix %q", refOrID))
		}
		if found != "" {
			return found, nil, nil
		}
	}
	if perr != nil {
		return "", nil, errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", perr))
	}
	return "", nil, noSuchImage(reference.FamiliarString(n))
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

func getRecord(tx *bolt.Tx, id digest.Digest) (record, error) {
	var r record
	v := tx.Bucket(bucketImages).Get([]byte(id))
	if v == nil {
		return r, noSuchImage(id.String())
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, errdefs.System(fmt.Errorf("image %s: %w", id, err))
	}
	return r, nil
}

// tagsOf returns the normalised references that point at id, sorted.
func tagsOf(tx *bolt.Tx, id digest.Digest) []reference.Named { return refsOf(tx, bucketTags, id) }

// digestsOf lists the "name@digest" references of an image, sorted.
func digestsOf(tx *bolt.Tx, id digest.Digest) []reference.Named { return refsOf(tx, bucketDigests, id) }

func refsOf(tx *bolt.Tx, bucket []byte, id digest.Digest) []reference.Named {
	var out []reference.Named
	tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		if digest.Digest(v) == id {
			if n, err := reference.ParseNormalizedNamed(string(k)); err == nil {
				out = append(out, n)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// digestKey is how a digested reference is keyed in bucketDigests: the name and digest, no tag.
func digestKey(c reference.Canonical) string {
	return reference.TrimNamed(c).String() + "@" + c.Digest().String()
}

func familiar(refs []reference.Named) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, reference.FamiliarString(r))
	}
	return out
}

// rawConfig is the part of a config that DockerOCIImage leaves out but Docker shows.
type rawConfig struct {
	Comment       string `json:"comment,omitempty"`
	DockerVersion string `json:"docker_version,omitempty"`
}

// readConfig loads and parses image id's config from the content store.
func (s *Service) readConfig(id digest.Digest) (dockerspec.DockerOCIImage, rawConfig, error) {
	var cfg dockerspec.DockerOCIImage
	var raw rawConfig
	f, err := s.cfg.Content.Open(id)
	if err != nil {
		return cfg, raw, errdefs.System(fmt.Errorf("image %s: config: %w", id, err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize))
	if err != nil {
		return cfg, raw, errdefs.System(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, raw, errdefs.System(fmt.Errorf("image %s: config: %w", id, err))
	}
	json.Unmarshal(b, &raw)
	return cfg, raw, nil
}

// maxConfigSize bounds what we read into memory for one config or manifest.
const maxConfigSize = 64 << 20

func (s *Service) image(tx *bolt.Tx, id digest.Digest) (*Image, error) {
	r, err := getRecord(tx, id)
	if err != nil {
		return nil, err
	}
	cfg, _, err := s.readConfig(id)
	if err != nil {
		return nil, err
	}
	img := &Image{ID: id, Config: cfg, RepoTags: familiar(tagsOf(tx, id)), RepoDigests: familiar(digestsOf(tx, id)), Created: r.Created, Size: r.size(),
		DiffIDs: r.DiffIDs, Parent: r.Parent}
	if c := r.chainIDs(); len(c) > 0 {
		img.ChainID = c[len(c)-1]
	}
	return img, nil
}

// Get returns the image refOrID names: name[:tag], a full or short ID, or "sha256:...". An unknown one
// is errdefs.NotFound "No such image: <ref>".
func (s *Service) Get(ctx context.Context, refOrID string) (*Image, error) {
	var img *Image
	err := s.cfg.DB.View(func(tx *bolt.Tx) error {
		id, _, err := resolve(tx, refOrID)
		if err != nil {
			return err
		}
		img, err = s.image(tx, id)
		return err
	})
	return img, err
}

func (s *Service) containersUsing(id digest.Digest) (running, stopped []string) {
	if s.cfg.ContainersUsing == nil {
		return nil, nil
	}
	return s.cfg.ContainersUsing(id.String())
}

// shortID is Docker's 12-character form of an ID or digest.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
