package container

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketContainers = []byte("containers")
)

// record is what is persisted about a container. Everything else is derived from it or from the monitor.
type record struct {
	ID           string
	Name         string // without the leading slash
	Created      time.Time
	ImageRef     string // as the user gave it
	ImageID      string
	ChainID      string
	Path         string
	Args         []string
	Config       *container.Config
	HostConfig   *container.HostConfig
	Networking   *network.NetworkingConfig `json:",omitempty"`
	State        state
	RestartCount int
	// ManuallyStopped is set by stop and cleared by start: it keeps unless-stopped (and, until berthd
	// restarts, every policy) from bringing the container back.
	ManuallyStopped bool `json:",omitempty"`
	LogPath         string
	HostnamePath    string
	HostsPath       string
	ResolvPath      string
	// MountPoints are the container's volumes, binds and --mount tmpfs, resolved at create.
	MountPoints []mountPoint `json:",omitempty"`
}

type state struct {
	Status string // created, running, restarting, exited, removing, dead
	// Paused is set on a running container whose cgroup is frozen; users see status "paused".
	Paused     bool `json:",omitempty"`
	Pid        int
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	// Health is replaced, never modified in place, so copies of the record may share it.
	Health *container.Health `json:",omitempty"`
}

// ctr is a container in memory: its record plus what only lives while berthd runs.
type ctr struct {
	mu     sync.Mutex
	rec    record
	exited chan struct{} // closed when the current run ends; nil before the first start
	exits  int           // runs ended since berthd started; next-exit waiters compare against it
	gone   bool          // removed
	// changed is closed and replaced on every state change, waking everyone waiting for one.
	changed chan struct{}
	// pending attaches that asked for streams before the container started
	pending []*pendingAttach
	// starting is set while Start is in progress, so a second Start or a Remove waits their turn.
	busy bool
	// restart policy bookkeeping, in memory as in Docker: the current backoff and a generation counter
	// that invalidates a scheduled restart when stop, start or rm intervene.
	backoff    time.Duration
	restartGen int
	// noRestart is set by stop and kill: the run they end is not restarted, whatever the policy.
	noRestart bool
}

// changedCh returns the channel closed at the next state change. c.mu must be held.
func (c *ctr) changedCh() <-chan struct{} {
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// notify wakes everyone waiting for a state change. c.mu must be held.
func (c *ctr) notify() {
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
}

func (c *ctr) running() bool { return c.rec.State.Status == "running" }

// status is the status users see: a frozen running container is "paused".
func (st state) status() string {
	if st.Status == "running" && st.Paused {
		return "paused"
	}
	return st.Status
}

func saveRecord(db *bolt.DB, r *record) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketContainers)
		if err != nil {
			return err
		}
		return b.Put([]byte(r.ID), data)
	})
}

func deleteRecord(db *bolt.DB, id string) error {
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContainers)
		if b == nil {
			return nil
		}
		return b.Delete([]byte(id))
	})
}

func loadRecords(db *bolt.DB) ([]record, error) {
	var out []record
	err := db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContainers)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("container %s: corrupt record: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}
