package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func apply(t *testing.T, s *Store, index uint64, changes ...Change) error {
	t.Helper()
	res := s.Apply(&raft.Log{Index: index, Type: raft.LogCommand, Data: Command{Changes: changes, Time: time.Unix(100, 0)}.Encode()})
	if res == nil {
		return nil
	}
	return res.(error)
}

func TestApplyVersionsAndConditions(t *testing.T) {
	s := New()
	if err := apply(t, s, 1, Change{Op: OpCreate, Kind: "node", ID: "a", Data: json.RawMessage(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		ch    Change
		want  error
		index uint64
	}{
		{"create twice", Change{Op: OpCreate, Kind: "node", ID: "a", Data: json.RawMessage(`{}`)}, ErrExists, 2},
		{"stale version", Change{Op: OpPut, Kind: "node", ID: "a", IfVersion: 7, Data: json.RawMessage(`{}`)}, ErrConflict, 3},
		{"current version", Change{Op: OpPut, Kind: "node", ID: "a", IfVersion: 1, Data: json.RawMessage(`{"x":2}`)}, nil, 4},
		{"delete missing", Change{Op: OpDelete, Kind: "node", ID: "zz"}, ErrNotFound, 5},
		{"bad op", Change{Op: "frob", Kind: "node", ID: "a"}, nil, 6},
	}
	for _, tc := range cases {
		err := apply(t, s, tc.index, tc.ch)
		if tc.name == "bad op" {
			if err == nil {
				t.Errorf("%s: no error", tc.name)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	o, ok := s.Get("node", "a")
	if !ok || o.Version != 4 || string(o.Data) != `{"x":2}` || !o.Created.Equal(time.Unix(100, 0)) {
		t.Fatalf("object after updates: %+v", o)
	}
	if s.Index() != 6 {
		t.Fatalf("index %d", s.Index())
	}
}

func TestCommandIsAllOrNothing(t *testing.T) {
	s := New()
	err := apply(t, s, 1,
		Change{Op: OpCreate, Kind: "node", ID: "a", Data: json.RawMessage(`{}`)},
		Change{Op: OpDelete, Kind: "node", ID: "missing"},
	)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v", err)
	}
	if _, ok := s.Get("node", "a"); ok {
		t.Fatal("the first change of a failed command was applied")
	}
}

type sink struct {
	bytes.Buffer
	cancelled bool
}

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { s.cancelled = true; return nil }
func (s *sink) Close() error  { return nil }

func TestSnapshotRestore(t *testing.T) {
	s := New()
	for i, id := range []string{"b", "a", "c"} {
		if err := apply(t, s, uint64(i+1), Change{Op: OpPut, Kind: "node", ID: id, Data: json.RawMessage(`"` + id + `"`)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = apply(t, s, 4, Change{Op: OpPut, Kind: "cluster", ID: "c1", Data: json.RawMessage(`{}`)})
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var out sink
	if err := snap.Persist(&out); err != nil || out.cancelled {
		t.Fatal(err)
	}
	r := New()
	if err := r.Restore(io.NopCloser(&out)); err != nil {
		t.Fatal(err)
	}
	list := r.List("node")
	if len(list) != 3 || list[0].ID != "a" || list[2].ID != "c" || string(list[1].Data) != `"b"` {
		t.Fatalf("restored nodes: %+v", list)
	}
	if r.Index() != 4 || len(r.List("cluster")) != 1 {
		t.Fatalf("restored index %d, clusters %d", r.Index(), len(r.List("cluster")))
	}
}
