package build

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// bucketCache maps a step's cache key to the image the step made; bucketCacheUsed maps it to when a
// build last made or used it (8 bytes, big-endian Unix nanoseconds), which prune's until and
// keep-storage go by. An entry without a time (from before it was recorded) counts as the oldest.
// touchEvery is how stale a cache entry's recorded use may get (see touchAll).
const touchEvery = time.Minute

var (
	bucketCache     = []byte("build-cache")
	bucketCacheUsed = []byte("build-cache-used")
)

// cacheKey digests what decides a step's result: the parent image, the kind of step and its command,
// the config it runs with and anything else it reads (extra: RUN settings, COPY's content digest).
func cacheKey(parent, kind, text string, cfg dockerspec.DockerOCIImageConfig, extra any) string {
	b, _ := json.Marshal(struct {
		Parent, Kind, Text string
		Config             dockerspec.DockerOCIImageConfig
		Extra              any
	}{parent, kind, text, cfg, extra})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// cacheGet returns the image cached for key, when that image still exists. The caller records the use
// (touchAll), once per build: a write transaction per step would cost an fsync per cached step.
func (s *Service) cacheGet(ctx context.Context, key string) (string, bool) {
	var id string
	_ = s.cfg.DB.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bucketCache).Get([]byte(key)))
		return nil
	})
	if id == "" {
		return "", false
	}
	if _, err := s.cfg.Images.Get(ctx, id); err != nil {
		return "", false
	}
	return id, true
}

// touchAll records that the cache entries keys were just used. Keys this daemon recorded less than
// touchEvery ago are left as they are, so back-to-back rebuilds cost no write transaction (and fsync);
// prune's until and keep-storage see use times at most that much older than the truth.
func (s *Service) touchAll(keys []string) {
	now := time.Now()
	s.touchMu.Lock()
	if s.touched == nil || len(s.touched) > 4096 {
		s.touched = map[string]time.Time{}
	}
	stale := keys[:0:0]
	for _, k := range keys {
		if now.Sub(s.touched[k]) >= touchEvery {
			stale = append(stale, k)
			s.touched[k] = now
		}
	}
	s.touchMu.Unlock()
	if len(stale) == 0 {
		return
	}
	keys = stale
	_ = s.cfg.DB.Update(func(tx *bolt.Tx) error {
		for _, k := range keys {
			if err := touch(tx, k); err != nil {
				return err
			}
		}
		return nil
	})
}

func touch(tx *bolt.Tx, key string) error {
	return tx.Bucket(bucketCacheUsed).Put([]byte(key), binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano())))
}

func (s *Service) cachePut(key, id string) error {
	err := s.cfg.DB.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketCache).Put([]byte(key), []byte(id)); err != nil {
			return err
		}
		return touch(tx, key)
	})
	if err != nil {
		return errdefs.System(err)
	}
	return nil
}
