package integration

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// tarEntries lists the entry names of a tar stream.
func tarEntries(t *testing.T, data string) []string {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(data))
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		names = append(names, hdr.Name)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCpRunningAndStopped(t *testing.T) {
	tmp := t.TempDir()
	running, stopped := uniqueName(t)+"-run", uniqueName(t)+"-stop"
	rmOnCleanup(t, running, stopped)
	mustDocker(t, "run", "-d", "--name", running, busybox, "sh", "-c", "echo live > /tmp/live; sleep 60")
	mustDocker(t, "create", "--name", stopped, busybox, "cat", "/tmp/in/file.txt", "/tmp/single")
	waitFor(t, 10*time.Second, func() bool { return docker(t, "cp", running+":/tmp/live", filepath.Join(tmp, "live")).code == 0 })

	// Out of a running container: a file, and /etc/passwd from the image layer.
	if got := readFile(t, filepath.Join(tmp, "live")); got != "live\n" {
		t.Errorf("cp out of running: %q", got)
	}
	mustDocker(t, "cp", running+":/etc/passwd", filepath.Join(tmp, "passwd"))
	if !strings.Contains(readFile(t, filepath.Join(tmp, "passwd")), "berth:x:1000:1000") {
		t.Errorf("cp /etc/passwd: %q", readFile(t, filepath.Join(tmp, "passwd")))
	}

	// Into both: a directory (into an existing directory) and a file under a new name.
	src := filepath.Join(tmp, "in")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "file.txt"), []byte("from host\n"), 0o640)
	os.WriteFile(filepath.Join(tmp, "one"), []byte("single\n"), 0o644)
	for _, c := range []string{running, stopped} {
		mustDocker(t, "cp", src, c+":/tmp/")
		mustDocker(t, "cp", filepath.Join(tmp, "one"), c+":/tmp/single")
	}
	// The stopped container sees them when it starts.
	if out := mustDocker(t, "start", "-a", stopped); out != "from host\nsingle" {
		t.Errorf("stopped container after cp in: %q", out)
	}
	// The running one: copy back out, a directory to a new name.
	back := filepath.Join(tmp, "back")
	mustDocker(t, "cp", running+":/tmp/in", back)
	if got := readFile(t, filepath.Join(back, "file.txt")); got != "from host\n" {
		t.Errorf("round trip through running container: %q", got)
	}
	if fi, err := os.Stat(filepath.Join(back, "file.txt")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode not kept: %v %v", fi.Mode(), err)
	}
	// "dir/." copies the contents into a new directory, with docker and berth.
	for _, cli := range []func(testing.TB, ...string) result{docker, berth} {
		contents := filepath.Join(t.TempDir(), "contents")
		if r := cli(t, "cp", running+":/tmp/in/.", contents); r.code != 0 {
			t.Fatalf("cp dir/.: %s", r)
		}
		if got := readFile(t, filepath.Join(contents, "file.txt")); got != "from host\n" {
			t.Errorf("cp dir/.: %q", got)
		}
	}
	// Out of the (now exited) stopped container.
	mustDocker(t, "cp", stopped+":/tmp/single", filepath.Join(tmp, "single-out"))
	if got := readFile(t, filepath.Join(tmp, "single-out")); got != "single\n" {
		t.Errorf("cp out of stopped: %q", got)
	}

	// "-": a tar on stdout, and a tar on stdin.
	r := docker(t, "cp", running+":/tmp/in", "-")
	if r.code != 0 {
		t.Fatalf("cp to stdout: %s", r)
	}
	names := tarEntries(t, r.stdout)
	sort.Strings(names)
	if strings.Join(names, ",") != "in/,in/file.txt" {
		t.Errorf("tar on stdout: %v", names)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "fromstdin", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("in\n"))
	tw.Close()
	if r := runCmd(t, dockerCmd("cp", "-", running+":/tmp"), buf.String()); r.code != 0 {
		t.Fatalf("cp from stdin: %s", r)
	}
	mustDocker(t, "cp", running+":/tmp/fromstdin", filepath.Join(tmp, "fromstdin"))
	if got := readFile(t, filepath.Join(tmp, "fromstdin")); got != "in\n" {
		t.Errorf("cp from stdin: %q", got)
	}
}

func TestCpErrors(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "create", "--name", name, busybox, "true")
	tmp := t.TempDir()
	r := docker(t, "cp", name+":/nope", filepath.Join(tmp, "x"))
	if r.code == 0 || !strings.Contains(r.stderr, "Could not find the file /nope in container "+name) {
		t.Errorf("cp of a missing path: %s", r)
	}
	os.WriteFile(filepath.Join(tmp, "f"), []byte("x"), 0o644)
	r = docker(t, "cp", filepath.Join(tmp, "f"), name+":/nope/deeper/f")
	if r.code == 0 || !strings.Contains(r.stderr, "Could not find the file /nope/deeper in container "+name) {
		t.Errorf("cp to a missing directory: %s", r)
	}
	r = docker(t, "cp", filepath.Join(tmp, "f"), "nosuchcontainer:/tmp")
	if r.code == 0 || !strings.Contains(r.stderr, "No such container") {
		t.Errorf("cp to a missing container: %s", r)
	}
	// A directory over a file.
	os.MkdirAll(filepath.Join(tmp, "passwd"), 0o755)
	r = docker(t, "cp", filepath.Join(tmp, "passwd"), name+":/etc/")
	if r.code == 0 || !strings.Contains(r.stderr, "cannot overwrite non-directory") {
		t.Errorf("cp a directory over a file: %s", r)
	}
}

// Symlinks in the container lead where they would inside it: never to the host's files.
func TestCpSymlinksStayInContainer(t *testing.T) {
	marker := "berth-cp-escape-" + uniqueName(t)
	hostMarker := filepath.Join("/etc", marker)
	t.Cleanup(func() { os.Remove(hostMarker); os.Remove(filepath.Join("/", marker)) })
	hostPasswd := readFile(t, "/etc/passwd")
	tmp := t.TempDir()
	os.WriteFile(filepath.Join(tmp, marker), []byte("planted\n"), 0o644)

	for _, state := range []string{"running", "stopped"} {
		t.Run(state, func(t *testing.T) {
			name := uniqueName(t)
			rmOnCleanup(t, name)
			script := "mkdir -p /a/b && ln -s /etc /tmp/etclink && ln -s ../../../../../../.. /a/b/up && ln -s /etc/passwd /tmp/pw"
			if state == "running" {
				mustDocker(t, "run", "-d", "--name", name, busybox, "sh", "-c", script+" && sleep 60")
				waitFor(t, 10*time.Second, func() bool { return docker(t, "cp", name+":/tmp/pw", filepath.Join(t.TempDir(), "x")).code == 0 })
			} else {
				mustDocker(t, "run", "--name", name, busybox, "sh", "-c", script)
			}
			ctrPasswd := filepath.Join(t.TempDir(), "ctr-passwd")
			mustDocker(t, "cp", name+":/etc/passwd", ctrPasswd)
			want := readFile(t, ctrPasswd)
			if want == hostPasswd {
				t.Fatal("test needs the container's /etc/passwd to differ from the host's")
			}
			for _, src := range []string{"/tmp/etclink/passwd", "/a/b/up/etc/passwd", "/a/b/up/../../../etc/passwd"} {
				out := filepath.Join(t.TempDir(), "out")
				mustDocker(t, "cp", name+":"+src, out)
				if got := readFile(t, out); got != want {
					t.Errorf("cp %s read %q, want the container's /etc/passwd", src, got)
				}
			}
			// -L follows /tmp/pw inside the container.
			out := filepath.Join(t.TempDir(), "pw")
			mustDocker(t, "cp", "-L", name+":/tmp/pw", out)
			if got := readFile(t, out); got != want {
				t.Errorf("cp -L /tmp/pw: %q", got)
			}

			// Writes through the links land in the container's /etc and /.
			mustDocker(t, "cp", filepath.Join(tmp, marker), name+":/tmp/etclink/")
			mustDocker(t, "cp", filepath.Join(tmp, marker), name+":/a/b/up/")
			if _, err := os.Stat(hostMarker); err == nil {
				t.Fatalf("cp through a symlink wrote the host's %s", hostMarker)
			}
			if _, err := os.Stat(filepath.Join("/", marker)); err == nil {
				t.Fatalf("cp through a symlink wrote the host's /%s", marker)
			}
			if readFile(t, "/etc/passwd") != hostPasswd {
				t.Fatal("host /etc/passwd changed")
			}
			for _, p := range []string{"/etc/" + marker, "/" + marker} {
				out := filepath.Join(t.TempDir(), "m")
				mustDocker(t, "cp", name+":"+p, out)
				if got := readFile(t, out); got != "planted\n" {
					t.Errorf("%s in the container: %q", p, got)
				}
			}
		})
	}
}

func TestDiff(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "--name", name, busybox, "sh", "-c",
		"echo new > /added && mkdir /newdir && echo x > /newdir/f && echo more >> /etc/passwd && rm /etc/group")
	out := mustDocker(t, "diff", name)
	want := []string{"A /added", "C /etc", "D /etc/group", "C /etc/passwd", "A /newdir", "A /newdir/f"}
	if out != strings.Join(want, "\n") {
		t.Errorf("docker diff:\n%s\nwant:\n%s", out, strings.Join(want, "\n"))
	}
	if r := berth(t, "diff", name); r.code != 0 || strings.TrimSpace(r.stdout) != out {
		t.Errorf("berth diff: %s", r)
	}
}

func TestCommit(t *testing.T) {
	name := uniqueName(t)
	img := "committed-" + name + ":v1"
	img2 := "committed-" + name + ":cmd"
	rmOnCleanup(t, name)
	t.Cleanup(func() { dockerCmd("rmi", "-f", img, img2).Run() })
	mustDocker(t, "run", "--name", name, busybox, "sh", "-c", "echo committed > /hello && rm /etc/group")

	id := mustDocker(t, "commit", "-m", "my message", "-a", "Jane <jane@example.com>", name, img)
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("commit printed %q", id)
	}
	if out := mustDocker(t, "run", "--rm", img, "cat", "/hello"); out != "committed" {
		t.Errorf("new image /hello: %q", out)
	}
	if r := docker(t, "run", "--rm", img, "ls", "/etc/group"); r.code == 0 {
		t.Errorf("deleted file is back in the committed image: %s", r)
	}
	if out := mustDocker(t, "inspect", "-f", "{{.Comment}}|{{.Author}}|{{len .RootFS.Layers}}", img); out != "my message|Jane <jane@example.com>|2" {
		t.Errorf("inspect: %q", out)
	}
	hist := mustDocker(t, "history", "--no-trunc", "--format", "{{.Comment}}", img)
	if !strings.HasPrefix(hist, "my message") {
		t.Errorf("history: %q", hist)
	}

	// --change sets the config; a running container is paused for the commit and keeps running after.
	run := name + "-run"
	rmOnCleanup(t, run)
	mustDocker(t, "run", "-d", "--name", run, busybox, "sh", "-c", "echo running > /r; sleep 60")
	waitFor(t, 10*time.Second, func() bool { return docker(t, "cp", run+":/r", "-").code == 0 })
	mustDocker(t, "commit", "--change", `CMD ["cat", "/r"]`, "-c", "ENV FOO=bar", run, img2)
	if out := mustDocker(t, "run", "--rm", img2); out != "running" {
		t.Errorf("CMD from --change: %q", out)
	}
	if out := mustDocker(t, "run", "--rm", img2, "sh", "-c", "echo $FOO"); out != "bar" {
		t.Errorf("ENV from --change: %q", out)
	}
	if out := mustDocker(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", run); out != "running false" {
		t.Errorf("after commit the container is %q", out)
	}
	// Still running for real: the freezer was thawed (cp out of it works and the process answers).
	mustDocker(t, "cp", busyboxFile(t), run+":/tmp/")
	if r := docker(t, "stop", "-t", "1", run); r.code != 0 {
		t.Errorf("stop after commit: %s", r)
	}

	// berth commit too.
	r := berth(t, "commit", "-m", "by berth", name)
	if r.code != 0 || !strings.HasPrefix(strings.TrimSpace(r.stdout), "sha256:") {
		t.Fatalf("berth commit: %s", r)
	}
	t.Cleanup(func() { dockerCmd("rmi", "-f", strings.TrimSpace(r.stdout)).Run() })
}

// busyboxFile is a small host file to copy around.
func busyboxFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "small")
	os.WriteFile(p, []byte("small\n"), 0o644)
	return p
}

func TestCommitRemovedContainer(t *testing.T) {
	name := uniqueName(t)
	mustDocker(t, "create", "--name", name, busybox, "true")
	mustDocker(t, "rm", name)
	r := docker(t, "commit", name, "gone:latest")
	if r.code == 0 || !strings.Contains(r.stderr, "No such container: "+name) {
		t.Errorf("commit of a removed container: %s", r)
	}
}

func TestExportImportRoundTrip(t *testing.T) {
	name := uniqueName(t)
	img := "exported-" + name + ":latest"
	rmOnCleanup(t, name)
	t.Cleanup(func() { dockerCmd("rmi", "-f", img).Run() })
	mustDocker(t, "run", "--name", name, busybox, "sh", "-c", "echo exported > /data && ln -s /data /link")
	out := filepath.Join(t.TempDir(), "fs.tar")
	mustDocker(t, "export", "-o", out, name)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	names := tarEntries(t, string(b))
	has := map[string]bool{}
	for _, n := range names {
		has[n] = true
	}
	for _, want := range []string{"data", "link", "etc/", "etc/passwd", "bin/busybox"} {
		if !has[want] {
			t.Errorf("export lacks %s (has %d entries)", want, len(names))
		}
	}
	mustDocker(t, "import", out, img)
	if got := mustDocker(t, "run", "--rm", img, "cat", "/link"); got != "exported" {
		t.Errorf("imported export: %q", got)
	}
	// berth export to stdout gives the same tree.
	r := berth(t, "export", name)
	if r.code != 0 || len(tarEntries(t, r.stdout)) != len(names) {
		t.Errorf("berth export: exit %d, %d entries, want %d", r.code, len(tarEntries(t, r.stdout)), len(names))
	}
}

func TestBerthCp(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-d", "--name", name, busybox, "sleep", "60")
	tmp := t.TempDir()
	os.WriteFile(filepath.Join(tmp, "f"), []byte("berth cp\n"), 0o600)
	if r := berth(t, "cp", filepath.Join(tmp, "f"), name+":/tmp/g"); r.code != 0 {
		t.Fatalf("berth cp in: %s", r)
	}
	if r := berth(t, "cp", name+":/tmp/g", filepath.Join(tmp, "h")); r.code != 0 {
		t.Fatalf("berth cp out: %s", r)
	}
	if got := readFile(t, filepath.Join(tmp, "h")); got != "berth cp\n" {
		t.Errorf("berth cp round trip: %q", got)
	}
	r := berth(t, "cp", name+":/tmp/g", "-")
	if r.code != 0 || strings.Join(tarEntries(t, r.stdout), ",") != "g" {
		t.Errorf("berth cp to stdout: %s", r)
	}
	// -a: the container's user owns what is copied in.
	owned := uniqueName(t) + "-user"
	rmOnCleanup(t, owned)
	mustDocker(t, "create", "--name", owned, "-u", "berth", busybox, "stat", "-c", "%u:%g", "/tmp/g")
	if r := berth(t, "cp", "-a", filepath.Join(tmp, "f"), owned+":/tmp/g"); r.code != 0 {
		t.Fatalf("berth cp -a: %s", r)
	}
	if out := mustDocker(t, "start", "-a", owned); out != "1000:1000" {
		t.Errorf("cp -a owner: %q", out)
	}
	if r := berth(t, "cp", name+":/nope", tmp); r.code == 0 || !strings.Contains(r.stderr, "Could not find the file /nope") {
		t.Errorf("berth cp of a missing path: %s", r)
	}
}
