// Package store is the cluster's replicated desired state: a typed key/value store of versioned objects
// whose every change is a raft log entry. It implements raft.FSM; the raft library calls Apply on every
// manager in log order, so all managers hold the same objects at the same index.
//
// Objects are grouped by kind ("cluster", "node"; services, tasks and networks slot in later as more kinds)
// and named by ID. An object's Version is the raft index of the entry that last wrote it, so it only grows
// and a client can make a write conditional on the version it read (optimistic concurrency, as Docker's
// `?version=` parameters do). Data is the object's JSON; the store does not interpret it.
//
// Crash guarantees come from raft: an entry is applied only once it is committed on a majority, the log
// and stable store survive restarts (bbolt), and Snapshot/Restore let raft compact the log. Reads are
// local and may lag the leader by the entries not yet applied here.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Object is one stored object.
type Object struct {
	Kind    string          `json:"kind"`
	ID      string          `json:"id"`
	Version uint64          `json:"version"`
	Created time.Time       `json:"created"`
	Updated time.Time       `json:"updated"`
	Data    json.RawMessage `json:"data"`
}

// Op is what a command does to one object.
type Op string

// The operations.
const (
	OpCreate Op = "create" // fails with ErrExists when the object exists
	OpPut    Op = "put"    // creates or replaces; IfVersion, when set, must match the current version
	OpDelete Op = "delete" // removes; IfVersion, when set, must match; a missing object is ErrNotFound
)

// Change is one object change inside a Command.
type Change struct {
	Op        Op              `json:"op"`
	Kind      string          `json:"kind"`
	ID        string          `json:"id"`
	IfVersion uint64          `json:"ifVersion,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// Command is one raft log entry: its changes apply all together or not at all.
type Command struct {
	Changes []Change `json:"changes"`
	// Time is when the leader proposed the command; it becomes the objects' Created/Updated time, so every
	// manager records the same times.
	Time time.Time `json:"time"`
}

// Encode returns the command as the bytes of a log entry.
func (c Command) Encode() []byte {
	b, _ := json.Marshal(c)
	return b
}

// Errors a command can end with; Apply returns them as the entry's response.
var (
	ErrNotFound = errors.New("object not found")
	ErrExists   = errors.New("object already exists")
	ErrConflict = errors.New("update out of sequence")
)

// Store holds the objects and implements raft.FSM.
type Store struct {
	mu      sync.RWMutex
	objects map[string]map[string]*Object
	index   uint64
	// changed is closed (and replaced) by every applied entry and restore: a broadcast to waiters.
	changed chan struct{}
}

// New returns an empty store.
func New() *Store {
	return &Store{objects: map[string]map[string]*Object{}, changed: make(chan struct{})}
}

// Changed returns a channel that is closed at the next change of the store.
func (s *Store) Changed() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// notify wakes the waiters of Changed; the caller holds s.mu for writing.
func (s *Store) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Get returns a copy of the object kind/id.
func (s *Store) Get(kind, id string) (Object, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.objects[kind][id]
	if !ok {
		return Object{}, false
	}
	return *o, true
}

// List returns the objects of a kind, sorted by ID.
func (s *Store) List(kind string) []Object {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Object, 0, len(s.objects[kind]))
	for _, o := range s.objects[kind] {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Index is the raft index of the last applied entry.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// Apply applies one committed log entry. Its response is nil or one of the errors above, wrapped with
// the object it concerns.
func (s *Store) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var c Command
	if err := json.Unmarshal(l.Data, &c); err != nil {
		return fmt.Errorf("undecodable command at index %d: %w", l.Index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = l.Index
	defer s.notify()
	if err := s.check(c); err != nil {
		return err
	}
	for _, ch := range c.Changes {
		objs := s.objects[ch.Kind]
		if objs == nil {
			objs = map[string]*Object{}
			s.objects[ch.Kind] = objs
		}
		switch ch.Op {
		case OpDelete:
			delete(objs, ch.ID)
		default:
			o := objs[ch.ID]
			if o == nil {
				o = &Object{Kind: ch.Kind, ID: ch.ID, Created: c.Time}
				objs[ch.ID] = o
			}
			o.Version, o.Updated, o.Data = l.Index, c.Time, ch.Data
		}
	}
	return nil
}

// check validates every change before any is made, so a command is all or nothing.
func (s *Store) check(c Command) error {
	for _, ch := range c.Changes {
		o, exists := s.objects[ch.Kind][ch.ID]
		switch ch.Op {
		case OpCreate:
			if exists {
				return fmt.Errorf("%s %s: %w", ch.Kind, ch.ID, ErrExists)
			}
		case OpPut, OpDelete:
			if ch.Op == OpDelete && !exists {
				return fmt.Errorf("%s %s: %w", ch.Kind, ch.ID, ErrNotFound)
			}
			if ch.IfVersion != 0 && (!exists || o.Version != ch.IfVersion) {
				return fmt.Errorf("%s %s: %w", ch.Kind, ch.ID, ErrConflict)
			}
		default:
			return fmt.Errorf("unknown operation %q", ch.Op)
		}
	}
	return nil
}

// snapshotData is the JSON form of a snapshot.
type snapshotData struct {
	Index   uint64    `json:"index"`
	Objects []*Object `json:"objects"`
}

// Snapshot captures the objects as they are now; raft persists it while Apply goes on.
func (s *Store) Snapshot() (raft.FSMSnapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := snapshotData{Index: s.index}
	for _, objs := range s.objects {
		for _, o := range objs {
			c := *o
			d.Objects = append(d.Objects, &c)
		}
	}
	return d, nil
}

// Persist writes the snapshot as JSON.
func (d snapshotData) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(d); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release does nothing: the snapshot holds copies.
func (d snapshotData) Release() {}

// Restore replaces every object with a snapshot's.
func (s *Store) Restore(r io.ReadCloser) error {
	defer r.Close()
	var d snapshotData
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return fmt.Errorf("reading cluster snapshot: %w", err)
	}
	objects := map[string]map[string]*Object{}
	for _, o := range d.Objects {
		if objects[o.Kind] == nil {
			objects[o.Kind] = map[string]*Object{}
		}
		objects[o.Kind][o.ID] = o
	}
	s.mu.Lock()
	s.objects, s.index = objects, d.Index
	s.notify()
	s.mu.Unlock()
	return nil
}
