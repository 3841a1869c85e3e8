package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/internal/cluster"
	"github.com/docker/docker/api/types/swarm"
)

// openCluster makes the swarm-mode service and resumes this node's role when it was part of a cluster.
// A swarm state that cannot be resumed is logged, not fatal: the engine still serves containers.
func (d *Daemon) openCluster(ctx context.Context) {
	d.cluster = cluster.New(cluster.Config{
		Root:        filepath.Join(d.opts.DataRoot, "swarm"),
		Description: d.nodeDescription,
		Logger:      d.log,
		RaftLog:     &raftLogWriter{log: d.log},
		NewExecutor: func(nodeID string) (cluster.Executor, error) { return d.NewExecutor(nodeID) },
		Networks:    d.overlay,
		TaskLogs:    d.containers,
	})
	if err := d.cluster.Start(ctx); err != nil {
		d.log.Error("swarm: could not resume this node's cluster membership", "err", err)
	}
}

// nodeDescription is what this engine tells the managers about itself.
func (d *Daemon) nodeDescription() swarm.NodeDescription {
	return swarm.NodeDescription{
		Hostname:  hostname(),
		Platform:  swarm.Platform{Architecture: arch(), OS: "linux"},
		Resources: swarm.Resources{NanoCPUs: int64(runtime.NumCPU()) * 1e9, MemoryBytes: memTotal()},
		Engine:    swarm.EngineDescription{EngineVersion: d.opts.Version, Plugins: []swarm.PluginDescription{{Type: "Volume", Name: "local"}, {Type: "Network", Name: "bridge"}, {Type: "Network", Name: "overlay"}}},
	}
}

// raftLogWriter turns the raft library's log lines into berthd's log: warnings and errors as such, the
// rest (elections, state changes) at debug level.
type raftLogWriter struct {
	log *slog.Logger
	buf bytes.Buffer
}

func (w *raftLogWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			break
		}
		line = strings.TrimSpace(line)
		switch {
		case strings.Contains(line, "[ERROR]"), strings.Contains(line, "[WARN]"):
			w.log.Warn("raft", "msg", line)
		default:
			w.log.Debug("raft", "msg", line)
		}
	}
	return len(p), nil
}
