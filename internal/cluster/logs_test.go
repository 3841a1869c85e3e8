package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/cluster/executor"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/backend"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
)

func frame(stream byte, payload string) []byte {
	b := []byte{stream, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(b, payload...)
}

func TestEntryWriter(t *testing.T) {
	ts := "2026-12-06T11:00:00.000000001Z"
	stream := append(frame(1, ts+" out one\n"), frame(2, ts+" err two\n")...)
	stream = append(stream, frame(1, ts+" ")...) // an empty entry is still one
	// However the frames are cut, the entries come out whole.
	for _, cut := range []int{1, 3, 8, 9, len(stream)} {
		var got []logEntry
		w := &entryWriter{task: "t", service: "s", emit: func(e logEntry) error { got = append(got, e); return nil }}
		for rest := stream; len(rest) > 0; {
			n := min(cut, len(rest))
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		want := []string{"stdout out one\n", "stderr err two\n", "stdout "}
		if len(got) != len(want) {
			t.Fatalf("cut %d: %d entries", cut, len(got))
		}
		for i, e := range got {
			if e.Stream+" "+string(e.Line) != want[i] || e.TaskID != "t" || e.ServiceID != "s" || e.Time.Nanosecond() != 1 {
				t.Errorf("cut %d: entry %d is %+v", cut, i, e)
			}
		}
	}
}

// fakeTaskLogs plays a node's engine: one container per task the cluster assigned to the node, whose log
// is a line naming the task, then the lines added to the fake; following, it sends lines as they are
// added, until the end.
type fakeTaskLogs struct {
	node   func() string
	tasks  func(node string) []swarm.Task
	active atomic.Int32

	mu    sync.Mutex
	start time.Time
	added []string
}

func (f *fakeTaskLogs) add(line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added = append(f.added, line)
}

func (f *fakeTaskLogs) List(_ context.Context, _ bool, _ int, _ bool, fl filters.Args) ([]container.Summary, error) {
	var out []container.Summary
	for _, t := range f.tasks(f.node()) {
		labels := map[string]string{executor.LabelTaskID: t.ID, executor.LabelServiceID: t.ServiceID}
		if fl.MatchKVList("label", labels) {
			out = append(out, container.Summary{ID: "c-" + t.ID, Labels: labels})
		}
	}
	return out, nil
}

func (f *fakeTaskLogs) LogEntries(ctx context.Context, ref string, opts container.LogsOptions, w io.Writer) error {
	f.active.Add(1)
	defer f.active.Add(-1)
	var since time.Time
	if opts.Since != "" {
		var sec, nsec int64
		if _, err := fmt.Sscanf(opts.Since, "%d.%d", &sec, &nsec); err != nil {
			return err
		}
		since = time.Unix(sec, nsec)
	}
	// Line i of the log was written i seconds after the fake started.
	f.mu.Lock()
	if f.start.IsZero() {
		f.start = time.Now().UTC()
	}
	start := f.start
	f.mu.Unlock()
	for sent := 0; ; {
		f.mu.Lock()
		lines := append([]string{"hello-" + strings.TrimPrefix(ref, "c-")}, f.added...)
		f.mu.Unlock()
		for ; sent < len(lines); sent++ {
			at := start.Add(time.Duration(sent) * time.Second)
			if at.Before(since) {
				continue
			}
			if _, err := w.Write(frame(1, at.Format(time.RFC3339Nano)+" "+lines[sent]+"\n")); err != nil {
				return err
			}
		}
		if !opts.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// collect reads a log stream to its end.
func collect(t *testing.T, msgs <-chan *backend.LogMessage) (lines []string, errs []string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				slices.Sort(lines)
				return lines, errs
			}
			if m.Err != nil {
				errs = append(errs, m.Err.Error())
				continue
			}
			attrs := map[string]string{}
			for _, a := range m.Attrs {
				attrs[a.Key] = a.Value
			}
			lines = append(lines, fmt.Sprintf("%s@%s %s", attrs[logAttrTask], attrs[logAttrNode], m.Line))
		case <-timeout:
			t.Fatal("the log stream did not end")
		}
	}
}

// TestServiceLogs gathers a service's logs from two managers and a worker without executors: their fake
// engines have one container per task assigned to them. Either manager answers.
func newTestNodeAt(t *testing.T, name string) *testNode {
	return &testNode{root: filepath.Join(t.TempDir(), name, "swarm"), addr: freeAddr(t)}
}

func TestServiceLogs(t *testing.T) {
	ctx := context.Background()
	mgr, wrk, mgr2 := newTestNodeAt(t, "m"), newTestNodeAt(t, "w"), newTestNodeAt(t, "m2")
	var tasksOf func(node string) []swarm.Task
	var srcs []*fakeTaskLogs
	for _, n := range []*testNode{mgr, wrk, mgr2} {
		src := &fakeTaskLogs{tasks: func(node string) []swarm.Task { return tasksOf(node) }}
		n.s = New(Config{Root: n.root, Description: func() NodeDescription { return NodeDescription{Hostname: n.addr} }, TaskLogs: src})
		src.node = func() string { return n.s.Info(ctx).NodeID }
		srcs = append(srcs, src)
		t.Cleanup(n.s.Close)
	}
	// The worker's control connections, to break them.
	var connMu sync.Mutex
	var wrkConns []net.Conn
	dial := wrk.s.client.tr.DialContext
	wrk.s.client.tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err == nil {
			connMu.Lock()
			wrkConns = append(wrkConns, c)
			connMu.Unlock()
		}
		return c, err
	}
	tasksOf = func(node string) []swarm.Task {
		ts, _ := mgr.s.Tasks(ctx, filters.NewArgs(filters.Arg("node", node)))
		return ts
	}
	if _, err := mgr.s.Init(ctx, swarm.InitRequest{ListenAddr: mgr.addr, AdvertiseAddr: mgr.addr}); err != nil {
		t.Fatal(err)
	}
	sw, _ := mgr.s.Inspect(ctx)
	if err := wrk.s.Join(ctx, swarm.JoinRequest{RemoteAddrs: []string{mgr.addr}, AdvertiseAddr: wrk.addr, JoinToken: sw.JoinTokens.Worker}); err != nil {
		t.Fatal(err)
	}
	if err := mgr2.s.Join(ctx, swarm.JoinRequest{ListenAddr: mgr2.addr, RemoteAddrs: []string{mgr.addr}, AdvertiseAddr: mgr2.addr, JoinToken: sw.JoinTokens.Manager}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the nodes to be ready", func() bool {
		for _, n := range []*testNode{wrk, mgr2} {
			if n, err := mgr.s.Node(ctx, n.s.Info(ctx).NodeID); err != nil || n.Status.State != swarm.NodeStateReady {
				return false
			}
		}
		return true
	})
	svc, err := mgr.s.CreateService(ctx, replicated("web", "busybox", 3))
	if err != nil {
		t.Fatal(err)
	}
	var tasks []swarm.Task
	waitFor(t, 10*time.Second, "a task on each node", func() bool {
		tasks, _ = mgr.s.Tasks(ctx, filters.NewArgs(filters.Arg("service", "web")))
		nodes := map[string]bool{}
		for _, tk := range tasks {
			if tk.NodeID != "" {
				nodes[tk.NodeID] = true
			}
		}
		return len(tasks) == 3 && len(nodes) == 3
	})
	var want []string
	for _, tk := range tasks {
		want = append(want, fmt.Sprintf("%s@%s hello-%s\n", tk.ID, tk.NodeID, tk.ID))
	}
	slices.Sort(want)
	all := container.LogsOptions{ShowStdout: true, ShowStderr: true}

	// The nodes' pollers start within a couple of seconds of joining; until then a call may miss one.
	waitFor(t, 10*time.Second, "every node to answer both managers", func() bool {
		for _, m := range []*testNode{mgr, mgr2} {
			msgs, _, err := m.s.ServiceLogs(ctx, backend.LogSelector{Services: []string{"web"}}, all)
			if err != nil {
				t.Fatal(err)
			}
			if lines, errs := collect(t, msgs); !slices.Equal(lines, want) || len(errs) > 0 {
				return false
			}
		}
		return true
	})

	cases := []struct {
		name string
		sel  backend.LogSelector
		want []string
	}{
		{"by service ID", backend.LogSelector{Services: []string{svc}}, want},
		{"by task ID prefix", backend.LogSelector{Tasks: []string{tasks[1].ID[:12]}}, []string{fmt.Sprintf("%s@%s hello-%s\n", tasks[1].ID, tasks[1].NodeID, tasks[1].ID)}},
	}
	for _, tc := range cases {
		msgs, tty, err := mgr.s.ServiceLogs(ctx, tc.sel, all)
		if err != nil || tty {
			t.Fatalf("%s: %v (tty %v)", tc.name, err, tty)
		}
		if lines, errs := collect(t, msgs); !slices.Equal(lines, tc.want) || len(errs) > 0 {
			t.Errorf("%s: %q %q, want %q", tc.name, lines, errs, tc.want)
		}
	}
	for _, sel := range []backend.LogSelector{{Services: []string{"nope"}}, {Tasks: []string{"nope"}}} {
		if _, _, err := mgr.s.ServiceLogs(ctx, sel, all); !errdefs.IsNotFound(err) || err.Error() != "no such task or service: nope" {
			t.Errorf("%+v: %v", sel, err)
		}
	}
	if _, _, err := wrk.s.ServiceLogs(ctx, backend.LogSelector{Services: []string{"web"}}, all); err != ErrNotManager {
		t.Errorf("logs on a worker: %v", err)
	}

	// Following: the lines come, and when the client goes the nodes stop reading.
	fctx, cancel := context.WithCancel(ctx)
	follow := all
	follow.Follow = true
	msgs, _, err := mgr.s.ServiceLogs(fctx, backend.LogSelector{Services: []string{"web"}}, follow)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		select {
		case m := <-msgs:
			got = append(got, string(m.Line))
		case <-time.After(10 * time.Second):
			t.Fatalf("following: %q", got)
		}
	}
	// A followed stream that breaks goes on after the last line it sent, without repeating it.
	connMu.Lock()
	for _, c := range wrkConns {
		c.Close()
	}
	connMu.Unlock()
	// A line written while the stream breaks may be lost; one written after it is not.
	waitFor(t, 5*time.Second, "the worker's reader to stop", func() bool { return srcs[1].active.Load() == 0 })
	srcs[1].add("after-break")
	select {
	case m := <-msgs:
		if string(m.Line) != "after-break\n" {
			t.Fatalf("after the break: %q %v", m.Line, m.Err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("nothing after the break")
	}
	select {
	case m := <-msgs:
		t.Fatalf("after the break, again: %q %v", m.Line, m.Err)
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	collect(t, msgs)
	waitFor(t, 5*time.Second, "the nodes to stop following", func() bool {
		return srcs[0].active.Load() == 0 && srcs[1].active.Load() == 0
	})
	waitFor(t, 5*time.Second, "the subscription to go", func() bool {
		subs, _ := mgr.s.mgr.logs.forNode(wrk.s.Info(ctx).NodeID)
		return len(subs) == 0
	})

	// A node that does not answer is reported after what the others sent.
	old := LogNodeTimeout
	LogNodeTimeout = 500 * time.Millisecond
	t.Cleanup(func() { LogNodeTimeout = old })
	wrkID := wrk.s.Info(ctx).NodeID
	wrk.s.Close()
	msgs, _, err = mgr.s.ServiceLogs(ctx, backend.LogSelector{Services: []string{"web"}}, all)
	if err != nil {
		t.Fatal(err)
	}
	lines, errs := collect(t, msgs)
	if len(lines) != 2 || strings.Contains(strings.Join(lines, ""), wrkID) || len(errs) != 1 || !strings.Contains(errs[0], "node "+wrkID+" is not available") {
		t.Fatalf("with the worker gone: %q %q", lines, errs)
	}
}

// The broker's poll answers at once when the node's subscriptions differ from what it knows, and waits
// otherwise.
func TestLogBrokerWait(t *testing.T) {
	b := newLogBroker()
	ctx := context.Background()
	if got := b.wait(ctx, "n1", nil); len(got.Subscriptions) != 0 {
		t.Fatalf("no subscriptions: %+v", got)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var got logSubscriptionsResponse
	go func() { defer wg.Done(); got = b.wait(ctx, "n1", nil) }()
	time.Sleep(50 * time.Millisecond)
	b.add(logSubscription{ID: "other", Nodes: []string{"n2"}})
	ls := b.add(logSubscription{ID: "s1", Nodes: []string{"n1"}})
	wg.Wait()
	if len(got.Subscriptions) != 1 || got.Subscriptions[0].ID != "s1" {
		t.Fatalf("woken with %+v", got)
	}
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if got := b.wait(wctx, "n1", []string{"s1"}); len(got.Subscriptions) != 1 || time.Since(start) < 90*time.Millisecond {
		t.Fatalf("an unchanged set answered at once: %+v", got)
	}
	b.remove(ls)
	if got := b.wait(ctx, "n1", []string{"s1"}); len(got.Subscriptions) != 0 {
		t.Fatalf("after removal: %+v", got)
	}
}
