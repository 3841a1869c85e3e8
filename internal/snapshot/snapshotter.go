package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/fsutil"
	bolt "go.etcd.io/bbolt"
)

// Kind says whether a snapshot can still be written (active) or is frozen (committed).
type Kind int

// The kinds of snapshot.
const (
	KindActive Kind = iota + 1
	KindCommitted
)

// String names the kind as it appears in logs and errors.
func (k Kind) String() string {
	switch k {
	case KindActive:
		return "active"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

// Info describes one snapshot.
type Info struct {
	Key     string
	Parent  string // committed name, or "" for a base snapshot
	Kind    Kind
	Created time.Time
}

// Snapshotter manages snapshots. Keys are unique across active and committed snapshots.
type Snapshotter interface {
	// Prepare creates an active snapshot on top of parent (a committed name, or "") and returns the
	// mounts that show it read-write. An existing key is an errdefs.Conflict.
	Prepare(ctx context.Context, key, parent string) ([]Mount, error)
	// Mounts returns the mounts for an existing snapshot: read-write for an active one, read-only for
	// a committed one.
	Mounts(ctx context.Context, key string) ([]Mount, error)
	// Commit turns the active snapshot key into the committed snapshot name; key no longer exists
	// afterwards. An existing name is an errdefs.Conflict.
	Commit(ctx context.Context, name, key string) error
	// CommitOnto commits key, prepared with no parent, as name on top of parent. It lets layers of one
	// image be unpacked side by side and stacked afterwards; only the overlay snapshotter can (a copy
	// snapshot holds its parent's files), the copying one says errdefs.NotImplemented.
	CommitOnto(ctx context.Context, name, key, parent string) error
	// Remove deletes a snapshot; one that is the parent of another is an errdefs.Conflict. The caller
	// must have unmounted it.
	Remove(ctx context.Context, key string) error
	// Stat describes a snapshot; errdefs.NotFound if there is none.
	Stat(ctx context.Context, key string) (Info, error)
	// UpperDir is the directory to unpack a layer into for an active snapshot: the overlay upper
	// directory, or the whole tree for the copying snapshotter.
	UpperDir(ctx context.Context, key string) (string, error)
	// Walk calls fn for every snapshot.
	Walk(ctx context.Context, fn func(Info) error) error
	// Name is "overlay" or "copy". With "overlay", layers unpacked into UpperDir must use overlayfs
	// whiteouts (archive.ApplyOptions.Overlay); with "copy" whiteouts are applied by deleting.
	Name() string
}

var bucketName = []byte("snapshots")

type record struct {
	ID      uint64    `json:"id"`
	Kind    Kind      `json:"kind"`
	Parent  string    `json:"parent,omitempty"`
	Created time.Time `json:"created"`
}

type snapshotter struct {
	root    string
	db      *bolt.DB
	overlay bool
}

// NewOverlay returns an overlayfs snapshotter keeping its data under root. Check Supported first.
func NewOverlay(root string, db *bolt.DB) (Snapshotter, error) {
	return newSnapshotter(root, db, true)
}

// NewCopy returns the fallback snapshotter: every Prepare copies the parent's whole tree (owners,
// modes, xattrs, hardlinks, devices, mtimes kept) and mounts are bind mounts. Slow and large, but it
// works on any filesystem.
func NewCopy(root string, db *bolt.DB) (Snapshotter, error) {
	return newSnapshotter(root, db, false)
}

func newSnapshotter(root string, db *bolt.DB, overlay bool) (*snapshotter, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, errdefs.System(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketName)
		return err
	}); err != nil {
		return nil, errdefs.System(err)
	}
	s := &snapshotter{root: root, db: db, overlay: overlay}
	if err := s.removeOrphans(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *snapshotter) Name() string {
	if s.overlay {
		return "overlay"
	}
	return "copy"
}

// removeOrphans deletes data directories that no record names: the leftovers of a crash during
// Prepare or Remove.
func (s *snapshotter) removeOrphans() error {
	used := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketName).ForEach(func(_, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			used[strconv.FormatUint(r.ID, 10)] = true
			return nil
		})
	})
	if err != nil {
		return errdefs.System(err)
	}
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return errdefs.System(err)
	}
	for _, e := range ents {
		if _, err := strconv.ParseUint(e.Name(), 10, 64); err != nil || used[e.Name()] {
			continue
		}
		os.RemoveAll(filepath.Join(s.root, e.Name()))
	}
	return nil
}

func (s *snapshotter) dir(id uint64) string { return filepath.Join(s.root, strconv.FormatUint(id, 10)) }
func (s *snapshotter) fs(id uint64) string  { return filepath.Join(s.dir(id), "fs") }

func getRecord(b *bolt.Bucket, key string) (record, error) {
	var r record
	v := b.Get([]byte(key))
	if v == nil {
		return r, errdefs.NotFound(fmt.Errorf("snapshot %s: not found", key))
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, errdefs.System(fmt.Errorf("snapshot %s: %w", key, err))
	}
	return r, nil
}

func putRecord(b *bolt.Bucket, key string, r record) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), v)
}

func checkNew(b *bolt.Bucket, key, parent string) error {
	if key == "" {
		return errdefs.InvalidParameter(errors.New("snapshot key must not be empty"))
	}
	if b.Get([]byte(key)) != nil {
		return errdefs.Conflict(fmt.Errorf("snapshot %s: already exists", key))
	}
	if parent == "" {
		return nil
	}
	p, err := getRecord(b, parent)
	if err != nil {
		return err
	}
	if p.Kind != KindCommitted {
		return errdefs.InvalidParameter(fmt.Errorf("snapshot %s: parent %s is not committed", key, parent))
	}
	return nil
}

func (s *snapshotter) Prepare(ctx context.Context, key, parent string) ([]Mount, error) {
	var id, parentID uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		if err := checkNew(b, key, parent); err != nil {
			return err
		}
		if parent != "" {
			p, _ := getRecord(b, parent)
			parentID = p.ID
		}
		var err error
		id, err = b.NextSequence()
		return err
	})
	if err != nil {
		return nil, err
	}
	// Build the directory outside any transaction (a copy can take a while), then publish it.
	if err := s.makeDirs(ctx, id, parent, parentID); err != nil {
		os.RemoveAll(s.dir(id))
		return nil, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		if err := checkNew(b, key, parent); err != nil {
			return err
		}
		return putRecord(b, key, record{ID: id, Kind: KindActive, Parent: parent, Created: time.Now().UTC()})
	})
	if err != nil {
		os.RemoveAll(s.dir(id))
		return nil, err
	}
	return s.Mounts(ctx, key)
}

func (s *snapshotter) makeDirs(ctx context.Context, id uint64, parent string, parentID uint64) error {
	if err := os.Mkdir(s.dir(id), 0o700); err != nil {
		return errdefs.System(err)
	}
	if s.overlay {
		if err := os.Mkdir(filepath.Join(s.dir(id), "work"), 0o700); err != nil {
			return errdefs.System(err)
		}
	}
	if err := os.Mkdir(s.fs(id), 0o755); err != nil {
		return errdefs.System(err)
	}
	if s.overlay || parent == "" {
		return nil
	}
	if err := fsutil.CopyTree(ctx, s.fs(parentID), s.fs(id), nil); err != nil {
		return errdefs.System(fmt.Errorf("copy parent snapshot %s: %w", parent, err))
	}
	return nil
}

func (s *snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	var (
		r      record
		lowers []string
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		var err error
		if r, err = getRecord(b, key); err != nil {
			return err
		}
		if !s.overlay {
			return nil
		}
		for p := r.Parent; p != ""; {
			pr, err := getRecord(b, p)
			if err != nil {
				return err
			}
			lowers = append(lowers, s.fs(pr.ID))
			p = pr.Parent
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if r.Kind == KindCommitted {
		// A committed snapshot is shown read-only, its own tree on top.
		lowers = append([]string{s.fs(r.ID)}, lowers...)
		if !s.overlay || len(lowers) == 1 {
			return []Mount{bindMount(lowers[0], true)}, nil
		}
		return []Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", "index=off", "lowerdir=" + strings.Join(lowers, ":")}}}, nil
	}
	if len(lowers) == 0 {
		return []Mount{bindMount(s.fs(r.ID), false)}, nil
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"index=off",
		"lowerdir=" + strings.Join(lowers, ":"),
		"upperdir=" + s.fs(r.ID),
		"workdir=" + filepath.Join(s.dir(r.ID), "work"),
	}}}, nil
}

func bindMount(src string, ro bool) Mount {
	mode := "rw"
	if ro {
		mode = "ro"
	}
	return Mount{Type: "bind", Source: src, Options: []string{"rbind", mode}}
}

func (s *snapshotter) Commit(ctx context.Context, name, key string) error {
	return s.commit(name, key, nil)
}

func (s *snapshotter) CommitOnto(ctx context.Context, name, key, parent string) error {
	if !s.overlay {
		return errdefs.NotImplemented(errors.New("the copying snapshotter cannot stack a snapshot after the fact"))
	}
	return s.commit(name, key, &parent)
}

// commit turns key into name; with onto, the snapshot (which must have no parent) gets that parent.
func (s *snapshotter) commit(name, key string, onto *string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		r, err := getRecord(b, key)
		if err != nil {
			return err
		}
		if r.Kind != KindActive {
			return errdefs.InvalidParameter(fmt.Errorf("snapshot %s: not active", key))
		}
		if name == "" {
			return errdefs.InvalidParameter(errors.New("snapshot name must not be empty"))
		}
		if b.Get([]byte(name)) != nil {
			return errdefs.Conflict(fmt.Errorf("snapshot %s: already exists", name))
		}
		if onto != nil {
			if r.Parent != "" {
				return errdefs.InvalidParameter(fmt.Errorf("snapshot %s: already has parent %s", key, r.Parent))
			}
			if *onto != "" {
				p, err := getRecord(b, *onto)
				if err != nil {
					return err
				}
				if p.Kind != KindCommitted {
					return errdefs.InvalidParameter(fmt.Errorf("snapshot %s: parent %s is not committed", key, *onto))
				}
			}
			r.Parent = *onto
		}
		r.Kind = KindCommitted
		r.Created = time.Now().UTC()
		if err := b.Delete([]byte(key)); err != nil {
			return err
		}
		return putRecord(b, name, r)
	})
}

func (s *snapshotter) Remove(ctx context.Context, key string) error {
	var id uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName)
		r, err := getRecord(b, key)
		if err != nil {
			return err
		}
		var child string
		b.ForEach(func(k, v []byte) error {
			var c record
			if json.Unmarshal(v, &c) == nil && c.Parent == key {
				child = string(k)
				return errors.New("found")
			}
			return nil
		})
		if child != "" {
			return errdefs.Conflict(fmt.Errorf("cannot remove snapshot %s: snapshot %s depends on it", key, child))
		}
		id = r.ID
		return b.Delete([]byte(key))
	})
	if err != nil {
		return err
	}
	// The record is gone; if this fails or we crash, removeOrphans finishes the job.
	if err := os.RemoveAll(s.dir(id)); err != nil {
		return errdefs.System(err)
	}
	return nil
}

func (s *snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	var info Info
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx.Bucket(bucketName), key)
		info = Info{Key: key, Parent: r.Parent, Kind: r.Kind, Created: r.Created}
		return err
	})
	return info, err
}

func (s *snapshotter) UpperDir(ctx context.Context, key string) (string, error) {
	var dir string
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx.Bucket(bucketName), key)
		if err != nil {
			return err
		}
		if r.Kind != KindActive {
			return errdefs.InvalidParameter(fmt.Errorf("snapshot %s: not active", key))
		}
		dir = s.fs(r.ID)
		return nil
	})
	return dir, err
}

func (s *snapshotter) Walk(ctx context.Context, fn func(Info) error) error {
	var infos []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketName).ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			infos = append(infos, Info{Key: string(k), Parent: r.Parent, Kind: r.Kind, Created: r.Created})
			return nil
		})
	})
	if err != nil {
		return err
	}
	// fn runs outside the transaction so it may call back into the snapshotter.
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}
