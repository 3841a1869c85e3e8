package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/berth-dev/berth/internal/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// bucketCache maps a step's cache key to the image the step made.
var bucketCache = []byte("build-cache")

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

// cacheGet returns the image cached for key, when that image still exists.
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

func (s *Service) cachePut(key, id string) error {
	err := s.cfg.DB.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCache).Put([]byte(key), []byte(id))
	})
	if err != nil {
		return errdefs.System(err)
	}
	return nil
}
