package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/cluster/executor"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/api/types/swarm"
)

// executorImages gives the cluster's task executor the engine's images and the distribution service's
// pull.
type executorImages struct {
	images *image.Service
	dist   *distribution.Service
}

func (i executorImages) Exists(ctx context.Context, ref string) bool {
	_, err := i.images.Get(ctx, ref)
	return err == nil
}

func (i executorImages) Pull(ctx context.Context, ref string, auth *registry.AuthConfig) error {
	_, err := i.dist.Pull(ctx, ref, distribution.PullOptions{Auth: auth}, nil)
	return err
}

// NewExecutor returns a task executor running this engine's share of a cluster's tasks as node nodeID.
// The container service satisfies the executor's Containers interface as it is.
func (d *Daemon) NewExecutor(nodeID string) (*executor.Executor, error) {
	return executor.New(executor.Config{
		NodeID:     nodeID,
		Containers: d.containers,
		Images:     executorImages{images: d.images, dist: d.dist},
		Logger:     d.log,
	})
}

// ExecutorDebugSocketEnv names the environment variable that makes berthd serve a task executor on a unix
// socket of that path, for the integration tests until the cluster drives the executor itself. It is
// not a user-facing interface: POST /apply takes a JSON []executor.Assignment (the node's full task set),
// GET /tasks answers every task's status history. BERTH_EXECUTOR_DEBUG_NODE sets the node ID.
const ExecutorDebugSocketEnv = "BERTH_EXECUTOR_DEBUG_SOCK"

// debugTask is one task's history as GET /tasks shows it.
type debugTask struct {
	Status  swarm.TaskStatus
	History []swarm.TaskState
	// Times are when each state of History was reached.
	Times []time.Time
}

// serveExecutorDebug starts the debug executor when the environment asks for it; the returned function
// stops it (task containers keep running).
func (d *Daemon) serveExecutorDebug() (stop func()) {
	path := os.Getenv(ExecutorDebugSocketEnv)
	if path == "" {
		return func() {}
	}
	node := os.Getenv("BERTH_EXECUTOR_DEBUG_NODE")
	if node == "" {
		node = "berthdebugnode"
	}
	ex, err := d.NewExecutor(node)
	if err != nil {
		d.log.Error("debug executor", "err", err)
		return func() {}
	}
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err == nil {
		// It runs any task spec it is given, so it is root's alone whatever the umask.
		if err = os.Chmod(path, 0o600); err != nil {
			l.Close()
		}
	}
	if err != nil {
		d.log.Error("debug executor", "err", err)
		_ = ex.Close()
		return func() {}
	}
	var mu sync.Mutex
	tasks := map[string]*debugTask{}
	go func() {
		for u := range ex.Updates() {
			mu.Lock()
			t := tasks[u.TaskID]
			if t == nil {
				t = &debugTask{}
				tasks[u.TaskID] = t
			}
			t.Status = u.Status
			t.History = append(t.History, u.Status.State)
			t.Times = append(t.Times, u.Status.Timestamp)
			mu.Unlock()
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apply", func(w http.ResponseWriter, r *http.Request) {
		var as []executor.Assignment
		if err := json.NewDecoder(r.Body).Decode(&as); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := ex.Apply(r.Context(), as); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /tasks", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(tasks)
	})
	srv := &http.Server{Handler: mux, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug)}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("debug executor", "err", err)
		}
	}()
	d.log.Warn("serving a debug task executor (tests only)", "socket", path, "node", node)
	return func() {
		_ = srv.Close()
		_ = ex.Close()
		_ = os.Remove(path)
	}
}
