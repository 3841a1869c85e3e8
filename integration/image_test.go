package integration

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestImportWithChanges(t *testing.T) {
	tarPath := filepath.Join(env.tmp, "busybox.tar")
	ref := "berth-test/changed:1"
	t.Cleanup(func() { _ = dockerCmd("rmi", "-f", ref).Run() })
	mustDocker(t, "import",
		"-c", `CMD ["sh", "-c", "echo $GREETING from $(pwd) as $(id -un)"]`,
		"-c", "ENV GREETING=ahoy",
		"-c", "WORKDIR /tmp",
		"-c", "USER berth",
		"-c", "LABEL team=berth",
		"-c", "EXPOSE 8080",
		"-m", "imported for a test",
		tarPath, ref)
	r := docker(t, "run", "--rm", ref)
	if r.code != 0 || r.stdout != "ahoy from /tmp as berth\n" {
		t.Fatalf("run of imported image: %s", r)
	}
	got := mustDocker(t, "image", "inspect", "-f", "{{.Config.Labels.team}} {{.Comment}} {{range $k, $v := .Config.ExposedPorts}}{{$k}}{{end}}", ref)
	if got != "berth imported for a test 8080/tcp" {
		t.Errorf("inspect: %q", got)
	}
	// import from stdin, gzip-compressed
	gz := filepath.Join(t.TempDir(), "bb.tar.gz")
	if out, err := runShell("gzip -c " + tarPath + " > " + gz); err != nil {
		t.Fatalf("gzip: %v %s", err, out)
	}
	ref2 := "berth-test/stdin:gz"
	t.Cleanup(func() { _ = dockerCmd("rmi", "-f", ref2).Run() })
	f, _ := os.Open(gz)
	defer f.Close()
	cmd := dockerCmd("import", "-", ref2)
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import from stdin: %v %s", err, out)
	}
	if r := docker(t, "run", "--rm", ref2, "echo", "ok"); r.stdout != "ok\n" {
		t.Fatalf("run of gz import: %s", r)
	}
	// same content, same layer: the two imports share it
	l1 := mustDocker(t, "image", "inspect", "-f", "{{json .RootFS.Layers}}", ref)
	l2 := mustDocker(t, "image", "inspect", "-f", "{{json .RootFS.Layers}}", ref2)
	if l1 != l2 {
		t.Errorf("same tar gave different layers: %s vs %s", l1, l2)
	}
}

func runShell(script string) ([]byte, error) {
	return execCommand("sh", "-c", script).CombinedOutput()
}

func TestSaveLoadRoundTrip(t *testing.T) {
	ref := "berth-test/saved:v1"
	t.Cleanup(func() { _ = dockerCmd("rmi", "-f", ref, "berth-test/saved:v2").Run() })
	mustDocker(t, "tag", busybox, ref)
	mustDocker(t, "tag", busybox, "berth-test/saved:v2")
	id := mustDocker(t, "image", "inspect", "-f", "{{.Id}}", ref)
	archive := filepath.Join(t.TempDir(), "saved.tar")
	mustDocker(t, "save", "-o", archive, ref, "berth-test/saved:v2")

	// The archive is a docker-save archive and an OCI layout at once.
	names := tarNames(t, archive)
	for _, want := range []string{"manifest.json", "index.json", "oci-layout"} {
		if !names[want] {
			t.Errorf("saved archive lacks %s (has %v)", want, names)
		}
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(tarFile(t, archive, "manifest.json"), &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || len(manifest[0].RepoTags) != 2 {
		t.Errorf("manifest.json: %+v", manifest)
	}

	mustDocker(t, "rmi", ref, "berth-test/saved:v2")
	out := mustDocker(t, "load", "-i", archive)
	if !strings.Contains(out, "Loaded image: berth-test/saved:v1") {
		t.Errorf("load output: %q", out)
	}
	if got := mustDocker(t, "image", "inspect", "-f", "{{.Id}}", ref); got != id {
		t.Errorf("loaded ID %s, saved %s", got, id)
	}
	if r := docker(t, "run", "--rm", ref, "echo", "loaded"); r.stdout != "loaded\n" {
		t.Errorf("run of loaded image: %s", r)
	}
}

func TestTagRmiSemantics(t *testing.T) {
	a, b := "berth-test/rmi:a", "berth-test/rmi:b"
	t.Cleanup(func() { _ = dockerCmd("rmi", "-f", a, b).Run() })
	mustDocker(t, "tag", busybox, a)
	mustDocker(t, "tag", busybox, b)
	out := mustDocker(t, "rmi", a)
	if !strings.Contains(out, "Untagged: "+a) || strings.Contains(out, "Deleted") {
		t.Errorf("rmi of one of several tags: %q", out)
	}
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "create", "--name", name, b, "true")
	// busybox:latest keeps the image alive anyway; an image only this container uses:
	only := "berth-test/rmi:only"
	tarPath := filepath.Join(env.tmp, "busybox.tar")
	mustDocker(t, "import", "-c", "LABEL only=1", tarPath, only)
	t.Cleanup(func() { _ = dockerCmd("rmi", "-f", only).Run() })
	c2 := uniqueName(t) + "x"
	rmOnCleanup(t, c2)
	mustDocker(t, "run", "--name", c2, only, "true")
	r := docker(t, "rmi", only)
	if r.code == 0 || !strings.Contains(r.stderr, "conflict") {
		t.Errorf("rmi of image used by a container: %s", r)
	}
	mustDocker(t, "rm", c2)
	out = mustDocker(t, "rmi", only)
	if !strings.Contains(out, "Deleted: sha256:") {
		t.Errorf("rmi of last tag: %q", out)
	}
	if r := docker(t, "image", "inspect", "nosuch:image"); r.code == 0 || !strings.Contains(r.stderr, "No such image") {
		t.Errorf("inspect of missing image: %s", r)
	}
}

func TestImagesHistoryPrune(t *testing.T) {
	out := mustDocker(t, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if !strings.Contains(out, "busybox:latest") {
		t.Errorf("images: %q", out)
	}
	if h := mustDocker(t, "history", "-q", busybox); h == "" {
		t.Errorf("history empty")
	}
	// a dangling image: import without a name
	tarPath := filepath.Join(env.tmp, "busybox.tar")
	id := mustDocker(t, "import", "-c", "LABEL dangling=yes", tarPath)
	if dang := mustDocker(t, "images", "-q", "--no-trunc", "--filter", "dangling=true"); !strings.Contains(dang, id) {
		t.Errorf("dangling filter misses %s: %q", id, dang)
	}
	out = mustDocker(t, "image", "prune", "-f")
	if !strings.Contains(out, id) {
		t.Errorf("prune output lacks %s: %q", id, out)
	}
	if r := docker(t, "image", "inspect", id); r.code == 0 {
		t.Errorf("pruned image still there")
	}
	if !strings.Contains(mustDocker(t, "images"), "busybox") {
		t.Errorf("prune removed a tagged image")
	}
}

func tarNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names[h.Name] = true
	}
	return names
}

func tarFile(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in %s", name, path)
		}
		if h.Name == name {
			b, _ := io.ReadAll(tr)
			return b
		}
	}
}
