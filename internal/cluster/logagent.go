package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/executor"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// The node's side of service logs (see logs.go): one poller per manager asks for the subscriptions that
// concern this node, and each subscription gets one publisher, which streams the matching task
// containers' entries to the manager that asked.

// TaskLogSource is what a node needs of its engine to send its tasks' logs; the container service is
// one.
type TaskLogSource interface {
	List(ctx context.Context, all bool, limit int, size bool, f filters.Args) ([]container.Summary, error)
	// LogEntries writes a container's log entries to w, one stdcopy frame each, whatever its TTY.
	LogEntries(ctx context.Context, ref string, opts container.LogsOptions, w io.Writer) error
}

// logRescan is how often a followed subscription looks for task containers started since, and sends a
// keepalive.
var logRescan = time.Second

// runLogAgent keeps one subscription poller per manager this node knows, until ctx ends.
func (s *Service) runLogAgent(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	pollers := map[string]context.CancelFunc{}
	defer func() {
		for _, cancel := range pollers {
			cancel()
		}
	}()
	for {
		want := map[string]bool{}
		for _, addr := range s.managerAddrs() {
			want[addr] = true
		}
		for addr, cancel := range pollers {
			if !want[addr] {
				cancel()
				delete(pollers, addr)
			}
		}
		for addr := range want {
			if _, ok := pollers[addr]; !ok {
				pctx, cancel := context.WithCancel(ctx)
				pollers[addr] = cancel
				wg.Add(1)
				go func() { defer wg.Done(); s.pollLogSubscriptions(pctx, addr) }()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// managerAddrs are the control addresses of the managers, as this node last heard of them.
func (s *Service) managerAddrs() []string {
	v := s.current()
	if v.state == nil {
		return nil
	}
	peers := v.state.Managers
	if v.mgr != nil {
		if ps := v.mgr.managers(); len(ps) > 0 {
			peers = ps
		}
	}
	out := make([]string, 0, len(peers))
	for _, p := range peers {
		out = append(out, p.Addr)
	}
	return out
}

// pollLogSubscriptions long-polls the manager at addr for this node's subscriptions, starting a publisher
// for each new one and stopping those the manager has dropped. A followed stream that broke (the manager
// still lists its subscription) starts again after the last entry it sent.
func (s *Service) pollLogSubscriptions(ctx context.Context, addr string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	active := map[string]context.CancelFunc{}
	defer func() {
		for _, cancel := range active {
			cancel()
		}
	}()
	var mu sync.Mutex
	broken := map[string]time.Time{} // by the publishers: subscription → time of its last entry sent
	var wake context.CancelFunc      // ends the poll in flight, so that a broken stream starts again at once
	resume := map[string]time.Time{}
	for ctx.Err() == nil {
		callCtx, cancelPoll := context.WithCancel(ctx)
		mu.Lock()
		wake = cancelPoll
		for id, last := range broken {
			if cancel, ok := active[id]; ok {
				cancel()
				delete(active, id)
				if !last.IsZero() {
					resume[id] = last
				}
			}
		}
		clear(broken)
		mu.Unlock()
		known := make([]string, 0, len(active))
		for id := range active {
			known = append(known, id)
		}
		body, _ := json.Marshal(logSubscriptionsRequest{Known: known})
		var resp logSubscriptionsResponse
		err := s.client.post(callCtx, addr, pathLogSubscriptions, body, &resp)
		woken := callCtx.Err() != nil
		cancelPoll()
		if err != nil {
			if !woken {
				sleepCtx(ctx, time.Second)
			}
			continue
		}
		listed := map[string]bool{}
		for _, sub := range resp.Subscriptions {
			listed[sub.ID] = true
			if _, ok := active[sub.ID]; ok {
				continue
			}
			if last, ok := resume[sub.ID]; ok {
				sub.Options = resumeOptions(sub.Options, last)
			}
			pctx, cancel := context.WithCancel(ctx)
			active[sub.ID] = cancel
			wg.Add(1)
			go func() {
				defer wg.Done()
				last, err := s.publishLogs(pctx, addr, sub)
				if err == nil || pctx.Err() != nil {
					return
				}
				s.log.Debug("swarm: sending task logs", "manager", addr, "err", err)
				if sub.Options.Follow {
					sleepCtx(pctx, time.Second)
					mu.Lock()
					broken[sub.ID] = last
					wake()
					mu.Unlock()
				}
			}()
		}
		// A finished publisher keeps its entry until the manager drops the subscription, so that it is
		// not started again.
		for id, cancel := range active {
			if !listed[id] {
				cancel()
				delete(active, id)
				delete(resume, id)
			}
		}
	}
}

// resumeOptions are the options that read on from after last, the time of the last entry sent.
func resumeOptions(o container.LogsOptions, last time.Time) container.LogsOptions {
	next := last.Add(time.Nanosecond)
	o.Since = fmt.Sprintf("%d.%09d", next.Unix(), next.Nanosecond())
	o.Tail = "all"
	return o
}

// publishLogs streams the entries of this node's containers that sub selects to the manager at addr:
// without follow until each container's log has been read, with follow until ctx ends or the manager
// hangs up. last is the time of the newest entry sent.
func (s *Service) publishLogs(ctx context.Context, addr string, sub logSubscription) (last time.Time, err error) {
	src := s.cfg.TaskLogs
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	posted := make(chan error, 1)
	go func() {
		err := s.client.stream(ctx, addr, pathLogPublish+sub.ID, pr)
		_ = pr.CloseWithError(errors.New("the manager ended the log stream"))
		cancel()
		posted <- err
	}()

	var mu sync.Mutex
	enc := json.NewEncoder(pw)
	emit := func(e logEntry) error {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(e); err != nil {
			return err
		}
		if e.Time.After(last) {
			last = e.Time
		}
		return nil
	}
	var readers sync.WaitGroup
	seen := map[string]bool{}
	scan := func() {
		for _, c := range s.taskContainers(ctx, src, sub) {
			// A container not started yet has no log to follow: it is read once it has started.
			if seen[c.ID] || (sub.Options.Follow && c.State == container.StateCreated) {
				continue
			}
			seen[c.ID] = true
			readers.Add(1)
			go func() {
				defer readers.Done()
				readTaskLogs(ctx, src, c, sub.Options, emit)
			}()
		}
	}
	scan()
	if sub.Options.Follow {
		t := time.NewTicker(logRescan)
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-t.C:
				scan()
				// An empty entry now and then: a write is what reveals a broken stream while the
				// containers are quiet (the HTTP client only notices when it next writes).
				_ = emit(logEntry{})
			}
		}
		t.Stop()
	}
	readers.Wait()
	// The clean end of the body tells the manager that this node has sent everything.
	_ = pw.Close()
	err = <-posted
	mu.Lock()
	defer mu.Unlock()
	return last, err
}

// taskContainers lists this node's containers that sub selects.
func (s *Service) taskContainers(ctx context.Context, src TaskLogSource, sub logSubscription) []container.Summary {
	if src == nil {
		return nil
	}
	var out []container.Summary
	for _, label := range sub.labelFilters() {
		cs, err := src.List(ctx, true, 0, false, filters.NewArgs(filters.Arg("label", label)))
		if err != nil {
			s.log.Debug("swarm: listing task containers for logs", "err", err)
			continue
		}
		out = append(out, cs...)
	}
	return out
}

// readTaskLogs sends one task container's log entries.
func readTaskLogs(ctx context.Context, src TaskLogSource, c container.Summary, opts container.LogsOptions, emit func(logEntry) error) {
	w := &entryWriter{task: c.Labels[executor.LabelTaskID], service: c.Labels[executor.LabelServiceID], emit: emit}
	err := src.LogEntries(ctx, c.ID, opts, w)
	// A container removed since it was listed (its task replaced) has no logs left to give.
	if err != nil && ctx.Err() == nil && !errors.Is(err, errEmit) && !errdefs.IsNotFound(err) {
		_ = emit(logEntry{ServiceID: w.service, TaskID: w.task, Err: fmt.Sprintf("task %s: %v", w.task, err)})
	}
}

var errEmit = errors.New("sending a log entry failed")

// entryWriter turns the stdcopy frames of a container's log, each "<RFC 3339 time> <entry>", into log
// entries.
type entryWriter struct {
	task, service string
	emit          func(logEntry) error
	buf           []byte
}

func (w *entryWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for len(w.buf) >= 8 {
		size := int(binary.BigEndian.Uint32(w.buf[4:8]))
		if len(w.buf) < 8+size {
			break
		}
		stream, payload := w.buf[0], w.buf[8:8+size]
		e := logEntry{ServiceID: w.service, TaskID: w.task, Stream: "stdout"}
		if stream == 2 {
			e.Stream = "stderr"
		}
		if ts, rest, ok := strings.Cut(string(payload), " "); ok {
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				e.Time, payload = t, []byte(rest)
			}
		}
		e.Line = append([]byte(nil), payload...)
		if err := w.emit(e); err != nil {
			return 0, fmt.Errorf("%w: %v", errEmit, err)
		}
		w.buf = w.buf[8+size:]
	}
	if len(w.buf) == 0 {
		w.buf = w.buf[:0:0] // let a large frame's memory go
	}
	return len(p), nil
}

// stream calls path on the manager at addr with a body that may last as long as ctx, and returns when
// the manager's answer ends: nil when the manager ended it, an error when the stream broke.
func (c *controlClient) stream(ctx context.Context, addr, path string, body io.Reader) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: c.tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var ce controlError
		_ = json.NewDecoder(resp.Body).Decode(&ce)
		return kindFromStatus(resp.StatusCode, errors.New(ce.Message))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}
