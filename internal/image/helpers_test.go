package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/testutil"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

var ctx = context.Background()

type env struct {
	svc   *Service
	root  string
	using map[string][2][]string // image ID -> running, stopped
}

// newEnv builds a service on a fresh data root with the overlay snapshotter (copy when overlay
// cannot be mounted, or when copy is true).
func newEnv(t *testing.T, copy bool) *env {
	t.Helper()
	testutil.RequireRoot(t)
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	snRoot := filepath.Join(root, "snapshots")
	var sn snapshot.Snapshotter
	if !copy && snapshot.Supported(snRoot) == nil {
		sn, err = snapshot.NewOverlay(snRoot, db)
	} else {
		sn, err = snapshot.NewCopy(snRoot, db)
	}
	if err != nil {
		t.Fatal(err)
	}
	e := &env{root: root, using: map[string][2][]string{}}
	e.svc, err = New(Config{Root: root, DB: db, Content: cs, Snapshotter: sn,
		ContainersUsing: func(id string) ([]string, []string) { u := e.using[id]; return u[0], u[1] }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var busyboxTarPath string

func busyboxTar(t *testing.T) string {
	t.Helper()
	if busyboxTarPath == "" {
		dir, err := os.MkdirTemp("", "berth-image-test-")
		if err != nil {
			t.Fatal(err)
		}
		busyboxTarPath = testutil.BusyboxTar(t, filepath.Join(dir, "busybox.tar"))
	}
	return busyboxTarPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if busyboxTarPath != "" {
		os.RemoveAll(filepath.Dir(busyboxTarPath))
	}
	os.Exit(code)
}

func importBusybox(t *testing.T, e *env, ref string, changes ...string) digest.Digest {
	t.Helper()
	f, err := os.Open(busyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	id, err := e.svc.Import(ctx, f, ImportOptions{Ref: ref, Changes: changes})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// mountImage prepares a container snapshot on the image and mounts it; all undone at cleanup.
func mountImage(t *testing.T, e *env, ref string) string {
	t.Helper()
	img, err := e.svc.Get(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	key := "ctr-" + randomHex()
	mounts, err := e.svc.cfg.Snapshotter.Prepare(ctx, key, img.ChainID)
	if err != nil {
		t.Fatal(err)
	}
	target := t.TempDir()
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := snapshot.Unmount(target); err != nil {
			t.Error(err)
		}
		e.svc.cfg.Snapshotter.Remove(ctx, key)
	})
	return target
}

// runIn runs busybox inside root with chroot and returns its output.
func runIn(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, err := exec.Command("chroot", append([]string{root, "/bin/busybox"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("chroot %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if strings.HasSuffix(name, "/") {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func readAll(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// configFor makes an image config over uncompressed layers.
func configFor(t *testing.T, layers [][]byte, labels map[string]string) []byte {
	var img ocispec.Image
	img.OS, img.Architecture = "linux", "amd64"
	img.RootFS.Type = "layers"
	img.Config.Labels = labels
	img.Config.Cmd = []string{"/bin/sh"}
	for _, l := range layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, digest.FromBytes(l))
		img.History = append(img.History, ocispec.History{CreatedBy: "layer"})
	}
	b, err := json.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// archiveOf writes files (name -> bytes) into a tar.
func archiveOf(t *testing.T, files map[string][]byte) *bytes.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, b := range files {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	tw.Close()
	return bytes.NewReader(buf.Bytes())
}

// dockerArchive builds an old-layout docker-save archive (<id>/layer.tar) holding one image.
func dockerArchive(t *testing.T, cfg []byte, layers [][]byte, tags []string) *bytes.Reader {
	files := map[string][]byte{}
	cfgName := digest.FromBytes(cfg).Encoded() + ".json"
	files[cfgName] = cfg
	var names []string
	for i, l := range layers {
		n := digest.FromString(string(rune(i))+string(l)).Encoded() + "/layer.tar"
		files[n] = l
		names = append(names, n)
	}
	m, _ := json.Marshal([]dockerManifestEntry{{Config: cfgName, RepoTags: tags, Layers: names}})
	files["manifest.json"] = m
	return archiveOf(t, files)
}

func countDirs(t *testing.T, dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if e.IsDir() {
			n++
		}
	}
	return n
}
