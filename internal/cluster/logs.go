package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/executor"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/backend"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
)

// Service and task logs follow Docker's design, because workers listen on no port: the manager a client
// asks records a log subscription in its memory; every node long-polls each manager for the
// subscriptions that concern it (logagent.go) and pushes the log entries of its matching task containers
// to that manager in one streaming request, which the manager merges into the client's stream.
//
// A subscription lives as long as the client's call. Without follow, the call ends once every node that
// has tasks of the selection has sent all it has (a node that does not start within LogNodeTimeout, or is
// down, is reported at the end of the stream, after what the others sent). With follow, every node is
// asked, so tasks started later anywhere are included, and the call ends when the client goes; the
// subscription then disappears from the nodes' polls and from under their streams, which ends them. A
// followed stream that breaks while its subscription lasts starts again from the node after the last entry
// it sent: entries in flight at the break may be lost, none is sent twice.

const (
	pathLogSubscriptions = "/logs/subscriptions"
	pathLogPublish       = "/logs/publish/"
)

// LogNodeTimeout is how long a logs call without follow waits for a node with tasks of the selection to
// start sending its logs.
var LogNodeTimeout = 10 * time.Second

// The details Docker attaches to each line of a service's logs; the docker CLI builds its
// "service.slot.task@node" prefix from them.
const (
	logAttrNode    = "com.docker.swarm.node.id"
	logAttrService = "com.docker.swarm.service.id"
	logAttrTask    = "com.docker.swarm.task.id"
)

// logSubscription is what a node is asked to send.
type logSubscription struct {
	ID string `json:"id"`
	// Services and Tasks select task containers by their IDs' labels; a container matching either is sent.
	Services []string `json:"services,omitempty"`
	Tasks    []string `json:"tasks,omitempty"`
	// Nodes are the nodes asked; none means every node.
	Nodes   []string              `json:"nodes,omitempty"`
	Options container.LogsOptions `json:"options"`
}

type logSubscriptionsRequest struct {
	// Known are the subscriptions the node already has from this manager.
	Known []string `json:"known"`
}

type logSubscriptionsResponse struct {
	Subscriptions []logSubscription `json:"subscriptions"`
}

// logEntry is one log entry as a node publishes it: a JSON stream of them is the body of a publish call.
type logEntry struct {
	ServiceID string    `json:"service,omitempty"`
	TaskID    string    `json:"task,omitempty"`
	Stream    string    `json:"stream,omitempty"`
	Time      time.Time `json:"time"`
	Line      []byte    `json:"line,omitempty"`
	// Err reports logs the node could not read.
	Err string `json:"err,omitempty"`
}

// ServiceLogs streams the logs of the selected services' and tasks' containers from the nodes that run
// them. The channel closes when the stream ends (ctx included); an error message in it reports logs that
// could not be had. tty reports that the tasks run with a TTY, whose logs are one raw stream.
func (s *Service) ServiceLogs(ctx context.Context, sel backend.LogSelector, opts container.LogsOptions) (<-chan *backend.LogMessage, bool, error) {
	m, _, err := s.managerView()
	if err != nil {
		return nil, false, err
	}
	if !opts.ShowStdout && !opts.ShowStderr {
		return nil, false, errdefs.InvalidParameter(errors.New("Bad parameters: you must choose at least one stream"))
	}
	sub, nodes, tty, err := m.logSelection(sel)
	if err != nil {
		return nil, false, err
	}
	// Nodes always send times, so the manager can add them or not; details are the manager's to add.
	sub.ID, sub.Options = newID(), opts
	sub.Options.Timestamps, sub.Options.Details = true, false
	var missing []string
	if !opts.Follow {
		for _, id := range nodes {
			if _, n, ok := m.node(id); !ok || n.Status.State == swarm.NodeStateDown {
				missing = append(missing, id)
			} else {
				sub.Nodes = append(sub.Nodes, id)
			}
		}
	}
	out := make(chan *backend.LogMessage)
	ls := m.logs.add(sub)
	go m.logs.forward(ctx, ls, out, missing)
	return out, tty, nil
}

// logSelection resolves a selector to what nodes are asked for, the nodes that have (or had) its tasks,
// and whether they have a TTY.
func (m *manager) logSelection(sel backend.LogSelector) (logSubscription, []string, bool, error) {
	var sub logSubscription
	tty := false
	services := map[string]bool{}
	for _, ref := range sel.Services {
		_, sv, err := m.resolveService(ref)
		if errdefs.IsNotFound(err) {
			return sub, nil, false, errNoSuchTaskOrService(ref)
		} else if err != nil {
			return sub, nil, false, err
		}
		services[sv.ID] = true
		sub.Services = append(sub.Services, sv.ID)
		tty = tty || (sv.Spec.TaskTemplate.ContainerSpec != nil && sv.Spec.TaskTemplate.ContainerSpec.TTY)
	}
	tasks := map[string]bool{}
	for _, ref := range sel.Tasks {
		t, err := m.resolveTask(ref)
		if errdefs.IsNotFound(err) {
			return sub, nil, false, errNoSuchTaskOrService(ref)
		} else if err != nil {
			return sub, nil, false, err
		}
		tasks[t.ID] = true
		sub.Tasks = append(sub.Tasks, t.ID)
		tty = tty || (t.Spec.ContainerSpec != nil && t.Spec.ContainerSpec.TTY)
	}
	nodes := map[string]bool{}
	for _, o := range m.store.List(kindTask) {
		t := toTask(o)
		if t.NodeID != "" && (services[t.ServiceID] || tasks[t.ID]) {
			nodes[t.NodeID] = true
		}
	}
	ids := make([]string, 0, len(nodes))
	for id := range nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return sub, ids, tty, nil
}

func errNoSuchTaskOrService(ref string) error {
	return errdefs.NotFound(fmt.Errorf("no such task or service: %s", ref))
}

// logBroker holds a manager's log subscriptions.
type logBroker struct {
	mu   sync.Mutex
	subs map[string]*logSub
	// changed is closed and replaced whenever a subscription comes or goes, waking the nodes' polls.
	changed chan struct{}
}

func newLogBroker() *logBroker {
	return &logBroker{subs: map[string]*logSub{}, changed: make(chan struct{})}
}

// logSub is a subscription in progress.
type logSub struct {
	logSubscription
	// in is unbuffered: once a publisher's send returns, the forwarder has the message, so a node marked
	// done has nothing left in flight.
	in chan *backend.LogMessage
	// gone is closed when the subscription ends; publishers stop then.
	gone chan struct{}

	mu sync.Mutex
	// pending are the nodes (without follow) that have not finished, true once they have started.
	pending map[string]bool
	failed  []string
	// finished is closed when no node is pending.
	finished chan struct{}
}

func (b *logBroker) add(sub logSubscription) *logSub {
	ls := &logSub{logSubscription: sub, in: make(chan *backend.LogMessage), gone: make(chan struct{}),
		pending: map[string]bool{}, finished: make(chan struct{})}
	for _, id := range sub.Nodes {
		ls.pending[id] = false
	}
	if len(ls.pending) == 0 && !sub.Options.Follow {
		close(ls.finished)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[sub.ID] = ls
	b.notifyLocked()
	return ls
}

func (b *logBroker) remove(ls *logSub) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, ls.ID)
	close(ls.gone)
	b.notifyLocked()
}

func (b *logBroker) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *logBroker) get(id string) *logSub {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subs[id]
}

// forNode lists the subscriptions that ask node, by ID.
func (b *logBroker) forNode(node string) ([]logSubscription, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []logSubscription
	for _, ls := range b.subs {
		if len(ls.Nodes) == 0 || slices.Contains(ls.Nodes, node) {
			out = append(out, ls.logSubscription)
		}
	}
	slices.SortFunc(out, func(a, b logSubscription) int { return strings.Compare(a.ID, b.ID) })
	return out, b.changed
}

// wait answers node's subscriptions once they differ from known, or after pollWait.
func (b *logBroker) wait(ctx context.Context, node string, known []string) logSubscriptionsResponse {
	deadline := time.NewTimer(pollWait)
	defer deadline.Stop()
	known = slices.Clone(known)
	slices.Sort(known)
	for {
		subs, changed := b.forNode(node)
		ids := make([]string, len(subs))
		for i, s := range subs {
			ids[i] = s.ID
		}
		if !slices.Equal(ids, known) {
			return logSubscriptionsResponse{Subscriptions: subs}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return logSubscriptionsResponse{Subscriptions: subs}
		case <-deadline.C:
			return logSubscriptionsResponse{Subscriptions: subs}
		}
	}
}

// forward copies the nodes' messages to out until the subscription is complete or ctx ends, then drops
// the subscription and closes out. missing are nodes known to be unavailable from the start.
func (b *logBroker) forward(ctx context.Context, ls *logSub, out chan<- *backend.LogMessage, missing []string) {
	defer close(out)
	defer b.remove(ls)
	var timeout <-chan time.Time
	if !ls.Options.Follow {
		t := time.NewTimer(LogNodeTimeout)
		defer t.Stop()
		timeout = t.C
	}
	send := func(msg *backend.LogMessage) bool {
		select {
		case out <- msg:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case msg := <-ls.in:
			if !send(msg) {
				return
			}
		case <-ls.finished:
			missing = append(missing, ls.failed...)
			if len(missing) > 0 {
				slices.Sort(missing)
				send(&backend.LogMessage{Err: fmt.Errorf("warning: incomplete log stream. some logs could not be retrieved for the following reasons: node %s is not available", strings.Join(missing, ", "))})
			}
			return
		case <-timeout:
			ls.giveUp()
		case <-ctx.Done():
			return
		}
	}
}

// start records that node has started sending.
func (ls *logSub) start(node string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if _, ok := ls.pending[node]; ok {
		ls.pending[node] = true
	}
}

// done records that node has finished; ok is false when its stream broke.
func (ls *logSub) done(node string, ok bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if _, found := ls.pending[node]; !found {
		return
	}
	delete(ls.pending, node)
	if !ok {
		ls.failed = append(ls.failed, node)
	}
	if len(ls.pending) == 0 {
		close(ls.finished)
	}
}

// giveUp stops waiting for the nodes that have not started sending.
func (ls *logSub) giveUp() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	n := len(ls.pending)
	for node, started := range ls.pending {
		if !started {
			delete(ls.pending, node)
			ls.failed = append(ls.failed, node)
		}
	}
	if n > 0 && len(ls.pending) == 0 {
		close(ls.finished)
	}
}

// receive reads a node's published entries into the subscription until the node's stream ends or the
// subscription does.
func (ls *logSub) receive(ctx context.Context, node string, body io.Reader) {
	ls.start(node)
	dec := json.NewDecoder(body)
	for {
		var e logEntry
		err := dec.Decode(&e)
		if err != nil {
			// A clean end of the body is the node's "that is all".
			ls.done(node, errors.Is(err, io.EOF))
			return
		}
		if e.TaskID == "" && e.Err == "" {
			continue // a keepalive
		}
		msg := e.message(node)
		select {
		case ls.in <- msg:
		case <-ls.gone:
			return
		case <-ctx.Done():
			ls.done(node, false)
			return
		}
	}
}

// message is the entry as the API writes it; the node is the one whose certificate sent it.
func (e logEntry) message(node string) *backend.LogMessage {
	if e.Err != "" {
		return &backend.LogMessage{Err: fmt.Errorf("node %s: %s", node, e.Err)}
	}
	return &backend.LogMessage{Line: e.Line, Source: e.Stream, Timestamp: e.Time, Attrs: []backend.LogAttr{
		{Key: logAttrNode, Value: node}, {Key: logAttrService, Value: e.ServiceID}, {Key: logAttrTask, Value: e.TaskID},
	}}
}

// logHandlers adds the log routes of manager m to the control server.
func (s *Service) logHandlers(mux *http.ServeMux, m *manager) {
	mux.HandleFunc("POST "+pathLogSubscriptions, func(w http.ResponseWriter, r *http.Request) {
		id, _, ok := peer(w, r)
		if !ok {
			return
		}
		var req logSubscriptionsRequest
		if !readJSON(w, r, &req) {
			return
		}
		reply(w, m.logs.wait(r.Context(), id, req.Known), nil)
	})
	mux.HandleFunc("POST "+pathLogPublish+"{id}", func(w http.ResponseWriter, r *http.Request) {
		id, _, ok := peer(w, r)
		if !ok {
			return
		}
		ls := m.logs.get(r.PathValue("id"))
		if ls == nil {
			reply(w, nil, errdefs.NotFound(errors.New("no such log subscription")))
			return
		}
		// A followed stream lasts as long as its client: the server's bound on reading a request does not
		// apply to an authenticated node's stream. The answer starts at once and ends with the stream, so
		// that the node, reading it, learns at once when the manager drops the stream.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.EnableFullDuplex()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		ls.receive(r.Context(), id, r.Body)
	})
}

// labelFilters are the label filters that select a subscription's containers on a node: a container
// matching any one of them is sent.
func (sub logSubscription) labelFilters() []string {
	var out []string
	for _, id := range sub.Services {
		out = append(out, executor.LabelServiceID+"="+id)
	}
	for _, id := range sub.Tasks {
		out = append(out, executor.LabelTaskID+"="+id)
	}
	return out
}
