package image

import (
	"bytes"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	digest "github.com/opencontainers/go-digest"
)

func describe(recs []image.DeleteResponse) string {
	var parts []string
	for _, r := range recs {
		if r.Untagged != "" {
			parts = append(parts, "U:"+r.Untagged)
		} else {
			parts = append(parts, "D:"+shortID(r.Deleted))
		}
	}
	return strings.Join(parts, " ")
}

func TestRemoveSemantics(t *testing.T) {
	e := newEnv(t, false)
	id := importBusybox(t, e, "a:1")
	img, _ := e.svc.Get(ctx, "a:1")
	short := shortID(id.String())
	e.svc.Tag(ctx, "a:1", "a:2")

	// By name with another tag left: only the tag goes.
	recs, err := e.svc.Remove(ctx, "a:1", false, false)
	if err != nil || describe(recs) != "U:a:1" {
		t.Fatalf("rmi a:1 = %s, %v", describe(recs), err)
	}
	// By ID with several tags: refused unless forced.
	e.svc.Tag(ctx, "a:2", "b")
	_, err = e.svc.Remove(ctx, short, false, false)
	if !errdefs.IsConflict(err) || err.Error() != "conflict: unable to delete "+short+" (must be forced) - image is referenced in multiple repositories" {
		t.Fatalf("rmi id = %v", err)
	}

	// A running container: the last tag is kept without force, the image is never deleted.
	e.svc.Untag(t, "a:2")
	e.using[id.String()] = [2][]string{{"c0ffee1234567890"}, nil}
	_, err = e.svc.Remove(ctx, "b", false, false)
	if !errdefs.IsConflict(err) || err.Error() != `conflict: unable to remove repository reference "b" (must force) - container c0ffee123456 is using its referenced image `+short {
		t.Fatalf("rmi b (running) = %v", err)
	}
	_, err = e.svc.Remove(ctx, id.String(), true, false)
	if !errdefs.IsConflict(err) || err.Error() != "conflict: unable to delete "+short+" (cannot be forced) - image is being used by running container c0ffee123456" {
		t.Fatalf("rmi -f id (running) = %v", err)
	}
	recs, err = e.svc.Remove(ctx, "b", true, false)
	if err != nil || describe(recs) != "U:b:latest" {
		t.Fatalf("rmi -f b (running) = %s, %v", describe(recs), err)
	}
	if _, err := e.svc.Get(ctx, id.String()); err != nil {
		t.Fatal("image used by a running container was deleted")
	}

	// A stopped container: needs force, then the image goes.
	e.using[id.String()] = [2][]string{nil, {"dead00000000beef"}}
	_, err = e.svc.Remove(ctx, short, false, false)
	if !errdefs.IsConflict(err) || !strings.HasSuffix(err.Error(), "(must be forced) - image is being used by stopped container dead00000000") {
		t.Fatalf("rmi id (stopped) = %v", err)
	}
	recs, err = e.svc.Remove(ctx, short, true, false)
	if err != nil || describe(recs) != "D:"+short+" D:"+shortID(img.ChainID) {
		t.Fatalf("rmi -f id (stopped) = %s, %v", describe(recs), err)
	}
	if _, err := e.svc.Get(ctx, id.String()); !errdefs.IsNotFound(err) {
		t.Fatalf("image survived: %v", err)
	}
	if e.svc.cfg.Content.Exists(img.DiffIDs[0]) || e.svc.cfg.Content.Exists(id) {
		t.Fatal("blobs survived rmi")
	}
	if _, err := e.svc.cfg.Snapshotter.Stat(ctx, img.ChainID); !errdefs.IsNotFound(err) {
		t.Fatalf("layer snapshot survived: %v", err)
	}
}

func TestRemoveForceByIDRemovesAllTags(t *testing.T) {
	e := newEnv(t, false)
	id := importBusybox(t, e, "x:1")
	e.svc.Tag(ctx, "x:1", "y:2")
	recs, err := e.svc.Remove(ctx, id.Encoded()[:8], true, false)
	if err != nil || !strings.HasPrefix(describe(recs), "U:x:1 U:y:2 D:"+shortID(id.String())) {
		t.Fatalf("rmi -f = %s, %v", describe(recs), err)
	}
	// By ID with a single tag: untag and delete without force.
	id = importBusybox(t, e, "z")
	recs, err = e.svc.Remove(ctx, id.String(), false, false)
	if err != nil || !strings.HasPrefix(describe(recs), "U:z:latest D:") {
		t.Fatalf("rmi id = %s, %v", describe(recs), err)
	}
	if _, err := e.svc.Remove(ctx, "z", false, false); !errdefs.IsNotFound(err) || err.Error() != "No such image: z:latest" {
		t.Fatalf("rmi missing = %v", err)
	}
}

func TestPrune(t *testing.T) {
	e := newEnv(t, false)
	dangling, err := e.svc.Import(ctx, bytes.NewReader(tarOf(t, map[string]string{"f": "1"})), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tagged := importBusybox(t, e, "keep")
	used, _ := e.svc.Import(ctx, bytes.NewReader(tarOf(t, map[string]string{"f": "2"})), ImportOptions{Ref: "used"})
	e.using[used.String()] = [2][]string{nil, {"stopped1"}}

	rep, err := e.svc.Prune(ctx, filters.NewArgs())
	if err != nil || describe(rep.ImagesDeleted) != "D:"+shortID(dangling.String())+" D:"+shortID(chainOf("", mustDiff(t, e, dangling, true))) || rep.SpaceReclaimed == 0 {
		t.Fatalf("prune = %+v, %v", rep, err)
	}
	rep, err = e.svc.Prune(ctx, filters.NewArgs(filters.Arg("dangling", "false")))
	if err != nil || !strings.HasPrefix(describe(rep.ImagesDeleted), "U:keep:latest D:"+shortID(tagged.String())) {
		t.Fatalf("prune -a = %+v, %v", rep, err)
	}
	if _, err := e.svc.Get(ctx, "used"); err != nil {
		t.Fatal("prune removed an image a container uses")
	}
	if _, err := e.svc.Prune(ctx, filters.NewArgs(filters.Arg("bogus", "1"))); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("bad filter: %v", err)
	}
}

// mustDiff returns the first diffID recorded for a (possibly already deleted) import of "f".
func mustDiff(t *testing.T, e *env, _ digest.Digest, _ bool) digest.Digest {
	return digest.FromBytes(tarOf(t, map[string]string{"f": "1"}))
}

func TestListFilters(t *testing.T) {
	e := newEnv(t, false)
	l1 := tarOf(t, map[string]string{"one": "1"})
	l2 := tarOf(t, map[string]string{"two": "2"})
	old, _ := e.svc.Import(ctx, bytes.NewReader(l1), ImportOptions{Ref: "web:1", Changes: []string{"LABEL tier=front"}})
	mid, _ := e.svc.Import(ctx, bytes.NewReader(l2), ImportOptions{Ref: "db:1", Changes: []string{"LABEL tier=back"}})
	dangling, _ := e.svc.Import(ctx, bytes.NewReader(l1), ImportOptions{Message: "other config"})
	ids := func(f filters.Args) string {
		list, err := e.svc.List(ctx, false, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range list {
			switch s.ID {
			case old.String():
				out = append(out, "old")
			case mid.String():
				out = append(out, "mid")
			case dangling.String():
				out = append(out, "dangling")
			}
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		f    filters.Args
		want string
	}{
		{filters.NewArgs(filters.Arg("dangling", "true")), "dangling"},
		{filters.NewArgs(filters.Arg("label", "tier=front")), "old"},
		{filters.NewArgs(filters.Arg("label", "tier")), "mid,old"},
		{filters.NewArgs(filters.Arg("reference", "w*")), "old"},
		{filters.NewArgs(filters.Arg("reference", "db:1")), "mid"},
	} {
		got := ids(tc.f)
		// Created times may tie at the second; compare as sets.
		if !sameSet(got, tc.want) {
			t.Errorf("List(%v) = %s, want %s", tc.f, got, tc.want)
		}
	}
	if _, err := e.svc.List(ctx, false, filters.NewArgs(filters.Arg("nope", "x"))); !errdefs.IsInvalidParameter(err) {
		t.Fatalf("bad filter: %v", err)
	}
	list, _ := e.svc.List(ctx, false, filters.NewArgs())
	for _, s := range list {
		if s.RepoTags == nil || s.RepoDigests == nil {
			t.Fatal("RepoTags/RepoDigests must be [] not null")
		}
	}
}

func sameSet(a, b string) bool {
	as, bs := strings.Split(a, ","), strings.Split(b, ",")
	if len(as) != len(bs) {
		return false
	}
	m := map[string]bool{}
	for _, x := range as {
		m[x] = true
	}
	for _, x := range bs {
		if !m[x] {
			return false
		}
	}
	return true
}

func TestNewCleansInterruptedUnpack(t *testing.T) {
	e := newEnv(t, false)
	sn := e.svc.cfg.Snapshotter
	sn.Prepare(ctx, extractPrefix+"dead", "")
	sn.Prepare(ctx, "orphan-active", "")
	sn.Commit(ctx, "sha256:0000000000000000000000000000000000000000000000000000000000000000", "orphan-active")
	if _, err := New(e.svc.cfg); err != nil {
		t.Fatal(err)
	}
	n := 0
	sn.Walk(ctx, func(i snapshotInfo) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d snapshots left after New", n)
	}
}
