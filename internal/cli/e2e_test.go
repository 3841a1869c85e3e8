package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestEndToEnd drives the real berth binary against a running engine (a reference dockerd, or berthd):
//
//	BERTH_TEST_DOCKERD=unix:///run/docker-ref.sock go test ./internal/cli -run EndToEnd
//
// It makes its own image from busybox-static and removes every container and image it created.
func TestEndToEnd(t *testing.T) {
	host := os.Getenv("BERTH_TEST_DOCKERD")
	if host == "" {
		t.Skip("set BERTH_TEST_DOCKERD=unix:///path/to.sock to run against a daemon")
	}
	testutil.RequireBusybox(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/berth-dev/berth/cmd/berth").CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	tag := fmt.Sprintf("berth-e2e-%d", os.Getpid())
	img := tag + ":latest"
	label := "berth.e2e=" + tag

	type result struct {
		code        int
		out, errOut string
	}
	berth := func(stdin string, args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-H", host}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_API_VERSION=")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin)
		}
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("berth %q: %v", args, err)
		}
		return result{code, out.String(), errb.String()}
	}
	expect := func(r result, code int, args ...string) {
		t.Helper()
		if r.code != code {
			t.Fatalf("berth %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, code, r.out, r.errOut)
		}
	}
	must := func(code int, args ...string) result {
		t.Helper()
		r := berth("", args...)
		expect(r, code, args...)
		return r
	}
	t.Cleanup(func() {
		ids := strings.Fields(berth("", "ps", "-aq", "--no-trunc", "--filter", "label="+label).out)
		if len(ids) > 0 {
			berth("", append([]string{"rm", "-f"}, ids...)...)
		}
		berth("", "rmi", "-f", img, tag+":copy")
	})

	tarPath := testutil.BusyboxTar(t, filepath.Join(dir, "busybox.tar"))
	if r := must(0, "import", "-c", `CMD ["sh"]`, "-m", "e2e", tarPath, img); !strings.HasPrefix(r.out, "sha256:") {
		t.Fatalf("import printed %q", r.out)
	}
	if r := must(0, "images", "--format", "{{.Repository}}:{{.Tag}}", tag); r.out != img+"\n" {
		t.Fatalf("images = %q", r.out)
	}
	if r := must(0, "images"); !regexp.MustCompile(`(?m)^REPOSITORY +TAG +IMAGE ID +CREATED +SIZE$`).MatchString(r.out) || !strings.Contains(r.out, tag) {
		t.Fatalf("images table = %q", r.out)
	}
	if r := must(0, "history", img); !strings.Contains(r.out, "e2e") {
		t.Fatalf("history = %q", r.out)
	}

	// Exit codes.
	must(0, "run", "--rm", "-l", label, img, "true")
	must(3, "run", "--rm", "-l", label, img, "sh", "-c", "exit 3")
	if r := must(127, "run", "--rm", "-l", label, img, "nosuchcmd"); !strings.Contains(r.errOut, "Error response from daemon") {
		t.Errorf("127 stderr = %q", r.errOut)
	}
	must(126, "run", "--rm", "-l", label, img, "/etc/passwd")
	must(125, "run", "--bogus", img)
	if r := must(125, "run", "-m", "12x", img); !strings.Contains(r.errOut, `invalid argument "12x" for "-m, --memory" flag`) {
		t.Errorf("bad size stderr = %q", r.errOut)
	}
	must(125, "run", "--rm", "-l", label, tag+":nosuchtag", "true")

	// Streams: stdout and stderr kept apart, piped stdin reaches the container and EOF ends it.
	if r := must(0, "run", "--rm", "-l", label, img, "sh", "-c", "echo out; echo err >&2"); r.out != "out\n" || r.errOut != "err\n" {
		t.Errorf("streams: out %q err %q", r.out, r.errOut)
	}
	if r := berth("hello stdin\n", "run", "--rm", "-i", "-l", label, img, "cat"); r.code != 0 || r.out != "hello stdin\n" {
		t.Errorf("stdin: %+v", r)
	}
	if r := must(0, "run", "--rm", "-l", label, "-e", "FOO=bar", "-w", "/tmp", "-u", "1000", img, "sh", "-c", "echo $FOO $(pwd) $(id -u)"); r.out != "bar /tmp 1000\n" {
		t.Errorf("env/workdir/user: %q", r.out)
	}
	if r := must(0, "run", "--rm", "-l", label, "--entrypoint", "echo", img, "via", "entrypoint"); r.out != "via entrypoint\n" {
		t.Errorf("entrypoint: %q", r.out)
	}

	// Detached lifecycle.
	name := tag + "-d"
	r := must(0, "run", "-d", "--name", name, "-l", label, img, "sh", "-c", "echo started; exec sleep 300")
	id := strings.TrimSpace(r.out)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("run -d printed %q", r.out)
	}
	if r := must(0, "ps", "--filter", "name="+name, "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(r.out, name+" Up ") {
		t.Errorf("ps = %q", r.out)
	}
	if r := must(0, "ps", "-q", "--filter", "name="+name); r.out != id[:12]+"\n" {
		t.Errorf("ps -q = %q", r.out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for must(0, "logs", name).out != "started\n" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if r := must(0, "logs", "--tail", "1", name); r.out != "started\n" {
		t.Errorf("logs = %q", r.out)
	}
	if r := must(0, "inspect", "-f", "{{.State.Running}} {{.Name}} {{.Config.Image}}", name); r.out != "true /"+name+" "+img+"\n" {
		t.Errorf("inspect -f = %q", r.out)
	}
	if r := must(0, "inspect", name); !strings.HasPrefix(r.out, "[\n    {\n        \"Id\": \""+id+"\"") {
		t.Errorf("inspect = %.80q", r.out)
	}
	if r := must(0, "stop", "-t", "1", name); r.out != name+"\n" {
		t.Errorf("stop printed %q", r.out)
	}
	if r := must(0, "wait", name); r.out != "137\n" && r.out != "143\n" {
		t.Errorf("wait = %q", r.out)
	}
	if r := must(0, "ps", "-a", "--filter", "name="+name, "--format", "{{.Status}}"); !strings.HasPrefix(r.out, "Exited (") {
		t.Errorf("ps -a status = %q", r.out)
	}
	must(0, "rm", name)
	if r := must(1, "rm", name); !strings.Contains(r.errOut, "No such container") {
		t.Errorf("rm twice stderr = %q", r.errOut)
	}

	// --rm -d: gone once it exits.
	r = must(0, "run", "-d", "--rm", "-l", label, img, "true")
	id = strings.TrimSpace(r.out)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if berth("", "inspect", id).code != 0 {
			break
		}
	}
	if r := berth("", "inspect", id); r.code != 1 || !strings.Contains(r.errOut, "No such object") {
		t.Errorf("auto-removed container still inspectable: %+v", r)
	}

	// create + start -a carries the exit code.
	r = must(0, "create", "-l", label, img, "sh", "-c", "echo hi; exit 5")
	cid := strings.TrimSpace(r.out)
	if r := must(5, "start", "-a", cid); r.out != "hi\n" {
		t.Errorf("start -a out %q", r.out)
	}
	must(0, "rm", cid)

	// save / load / tag / rmi.
	must(0, "tag", img, tag+":copy")
	saved := filepath.Join(dir, "saved.tar")
	must(0, "save", "-o", saved, tag+":copy")
	if fi, err := os.Stat(saved); err != nil || fi.Size() == 0 {
		t.Fatalf("save wrote nothing: %v", err)
	}
	if r := must(0, "rmi", tag+":copy"); r.out != "Untagged: "+tag+":copy\n" {
		t.Errorf("rmi = %q", r.out)
	}
	if r := must(0, "load", "-i", saved); !strings.Contains(r.out, "Loaded image: "+tag+":copy") {
		t.Errorf("load = %q", r.out)
	}
	must(0, "rmi", tag+":copy")
	if r := must(1, "rmi", tag+":nosuch"); !strings.Contains(r.errOut, "No such image") {
		t.Errorf("rmi missing stderr = %q", r.errOut)
	}
}
