package linux

import (
	"context"
	"sync"
)

// Cgroup removals still running in the background, by cgroupsPath. Each entry's channel is closed when
// the removal ends; a newer one for the same path (a restart that failed quickly) chains after it.
var removals struct {
	sync.Mutex
	m map[string]chan struct{}
}

// beginCgroupRemoval records that path is being removed; call the returned func when done.
func beginCgroupRemoval(path string) func() {
	ch := make(chan struct{})
	removals.Lock()
	if removals.m == nil {
		removals.m = map[string]chan struct{}{}
	}
	removals.m[path] = ch
	removals.Unlock()
	return func() {
		removals.Lock()
		if removals.m[path] == ch {
			delete(removals.m, path)
		}
		removals.Unlock()
		close(ch)
	}
}

// waitCgroupRemoved waits until no removal of path is pending, so a new container never creates its
// cgroup just before an old removal deletes it.
func waitCgroupRemoved(ctx context.Context, path string) error {
	for {
		removals.Lock()
		ch := removals.m[path]
		removals.Unlock()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitAllRemovals waits for every pending cgroup removal, for a clean shutdown.
func waitAllRemovals(ctx context.Context) error {
	for {
		removals.Lock()
		var ch chan struct{}
		for _, c := range removals.m {
			ch = c
			break
		}
		removals.Unlock()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
