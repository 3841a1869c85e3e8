package image

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// Tag points target (repository[:tag], default :latest) at the image source names. A tag that pointed
// elsewhere moves, leaving its old image untagged (dangling) as Docker does.
func (s *Service) Tag(ctx context.Context, source, target string) error {
	n, err := parseTag(target)
	if err != nil {
		return err
	}
	// A tag that already points there (a rebuild) costs no write transaction and its fsync.
	same := false
	_ = s.cfg.DB.View(func(tx *bolt.Tx) error {
		id, _, err := resolve(tx, source)
		same = err == nil && string(tx.Bucket(bucketTags).Get([]byte(n.String()))) == id.String()
		return nil
	})
	if same {
		s.refEvent(ctx, "tag", target)
		return nil
	}
	err = s.cfg.DB.Update(func(tx *bolt.Tx) error {
		id, _, err := resolve(tx, source)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketTags).Put([]byte(n.String()), []byte(id))
	})
	if err == nil {
		s.refEvent(ctx, "tag", target)
	}
	return err
}
