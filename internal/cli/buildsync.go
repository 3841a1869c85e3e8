package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/ctxsync"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
	units "github.com/docker/go-units"
)

// syncBuild builds from the context directory dir through Berth's context sync (package ctxsync):
// the daemon is sent the context's metadata, then only the files it lacks. It reports false, having
// built nothing, when the daemon does not offer the sync (Docker, an older berthd), so the caller
// uploads the context tar instead. BERTH_BUILD_SYNC=0 skips it.
func (e *env) syncBuild(ctx context.Context, dir, dockerfile string, stdinDockerfile []byte, opts build.ImageBuildOptions, quiet bool) (string, bool, error) {
	if e.eng == nil {
		e.eng = e.newEngine()
	}
	c, err := e.eng.client()
	if err != nil {
		return "", false, err
	}
	m, dfName, err := scanContext(dir, dockerfile, stdinDockerfile)
	if err != nil {
		return "", false, fmt.Errorf("unable to prepare context: %w", err)
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", false, err
	}
	ans, ok := e.eng.postManifest(ctx, c, contextID(absDir), m)
	if !ok {
		return "", false, nil
	}
	// Only what the daemon asked for, in manifest order (a directory before what is in it).
	need := make(map[string]bool, len(ans.Need))
	for _, p := range ans.Need {
		need[p] = true
	}
	if !quiet {
		var size int64
		for _, en := range m.Entries {
			if need[en.Path] {
				size += en.Size
			}
		}
		fmt.Fprintf(e.Out, "Build context synced: sending %d of %d paths (%s)\n", len(ans.Need), len(m.Entries), units.HumanSize(float64(size)))
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		for _, en := range m.Entries {
			if !need[en.Path] {
				continue
			}
			if err = archive.WriteEntry(tw, filepath.Join(absDir, filepath.FromSlash(en.Path)), en.Path, false); err != nil {
				break
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	bc, err := client.NewClientWithOpts(append(e.eng.transportOpts(), client.WithVersion(c.ClientVersion()),
		client.WithHTTPHeaders(map[string]string{ctxsync.Header: ans.Session}))...)
	if err != nil {
		return "", false, err
	}
	defer bc.Close()
	opts.Dockerfile = dfName
	resp, err := bc.ImageBuild(ctx, pr, opts)
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	id, err := showBuild(resp.Body, e.Out, quiet)
	return id, true, err
}

// scanContext lists the context directory for a sync: what the context tar would hold, except the
// Dockerfile and .dockerignore when .dockerignore excludes them (they travel in the manifest).
func scanContext(dir, dockerfile string, stdinDockerfile []byte) (ctxsync.Manifest, string, error) {
	m := ctxsync.Manifest{Version: ctxsync.Version, ScanStart: time.Now().UnixNano()}
	pm, ignore, err := contextIgnore(dir)
	if err != nil {
		return m, "", err
	}
	m.Dockerignore = ignore
	dfName, extra, err := dockerfileName(dir, dockerfile)
	if err != nil {
		return m, "", err
	}
	switch extra {
	case "-":
		m.Dockerfile = stdinDockerfile
	case "":
		m.Dockerfile, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(dfName)))
	default:
		m.Dockerfile, err = os.ReadFile(extra)
	}
	if err != nil {
		return m, "", err
	}
	err = ctxsync.Walk(dir, pm, nil, func(p string, fi fs.FileInfo) error {
		en, err := ctxsync.EntryOf(p, filepath.Join(dir, filepath.FromSlash(p)), fi)
		if err == nil {
			m.Entries = append(m.Entries, en)
		}
		return err
	})
	return m, dfName, err
}

// contextID names a context directory on this machine, stably from one build to the next.
func contextID(absDir string) string {
	host, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		h, _ := os.Hostname()
		host = []byte(h)
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(host)) + "\x00" + absDir))
	return hex.EncodeToString(sum[:16])
}

// postManifest sends the manifest; false means the daemon does not do context sync (or failed to),
// and the build should upload the context tar instead.
func (e *engine) postManifest(ctx context.Context, c *client.Client, id string, m ctxsync.Manifest) (ctxsync.Answer, bool) {
	var ans ctxsync.Answer
	u, err := client.ParseHostURL(c.DaemonHost())
	if err != nil {
		return ans, false
	}
	scheme, host := "http", u.Host
	if e.tlsCfg != nil {
		scheme = "https"
	}
	if u.Scheme == "unix" || u.Scheme == "npipe" {
		host = client.DummyHost
	}
	body, err := json.Marshal(m)
	if err != nil {
		return ans, false
	}
	url := fmt.Sprintf("%s://%s%s/berth/build/context/%s/sync", scheme, host, strings.TrimSuffix(u.Path, "/"), id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return ans, false
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		return ans, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ans) != nil || ans.Version != ctxsync.Version || ans.Session == "" {
		return ans, false
	}
	return ans, true
}
