package monitor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// record is <exec-root>/containers/<id>/monitor.json: what a restarted monitor needs to find a container
// again (re-adoption is not implemented yet; the file is written so it can be).
type record struct {
	CreateOptions
	Pid        int       `json:"pid"`
	Status     string    `json:"status"`
	ExitCode   int       `json:"exitCode"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

func (c *container) persist() {
	c.mu.Lock()
	if c.deleted {
		c.mu.Unlock()
		return
	}
	r := record{CreateOptions: c.opts, Pid: c.pid, Status: c.status, ExitCode: c.exit.Code,
		StartedAt: c.startedAt, FinishedAt: c.endedAt}
	c.mu.Unlock()
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	if err := writeFileAtomic(filepath.Join(c.dir, "monitor.json"), r); err != nil {
		c.s.log.Error("saving container record", "id", c.opts.ID, "err", err)
	}
}

// writeFileAtomic replaces path with v's JSON so a crash leaves the old or the new record, never half.
func writeFileAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
