package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// buildContext writes files (path -> content) into a fresh directory, the build context.
func buildContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// legacyBuild runs the stock docker CLI's legacy builder (DOCKER_BUILDKIT=0) in dir.
func legacyBuild(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := dockerCmd(append([]string{"build"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Env, "DOCKER_BUILDKIT=0")
	return runCmd(t, cmd, "")
}

// rmiOnCleanup removes images when the test ends.
func rmiOnCleanup(t *testing.T, refs ...string) {
	t.Cleanup(func() { _ = dockerCmd(append([]string{"rmi", "-f"}, refs...)...).Run() })
}

func berthBuild(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := berthCmd(append([]string{"build"}, args...)...)
	cmd.Dir = dir
	return runCmd(t, cmd, "")
}

func TestBuildLegacyDockerCLI(t *testing.T) {
	tag := uniqueName(t) + ":v1"
	rmiOnCleanup(t, tag)
	dir := buildContext(t, map[string]string{
		"Dockerfile": `FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY hello.txt .
RUN echo "$GREETING from run" > /app/run.txt && cat /app/hello.txt
CMD ["cat", "/app/run.txt", "/app/hello.txt"]
`,
		"hello.txt": "file content\n",
	})
	iid := filepath.Join(t.TempDir(), "iid")
	r := legacyBuild(t, dir, "-t", tag, "--iidfile", iid, ".")
	if r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	if id, _ := os.ReadFile(iid); string(id) != mustDocker(t, "inspect", "-f", "{{.Id}}", tag) {
		t.Fatalf("--iidfile holds %q", id)
	}
	for _, want := range []string{"Step 1/6 : FROM busybox", "Step 5/6 : RUN", "file content", "Successfully built ", "Successfully tagged " + tag} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("build output lacks %q:\n%s", want, r.stdout)
		}
	}
	out := mustDocker(t, "run", "--rm", tag)
	if out != "hello from run\nfile content" {
		t.Fatalf("run output %q", out)
	}
	if wd := mustDocker(t, "inspect", "-f", "{{.Config.WorkingDir}} {{.Config.Env}}", tag); !strings.Contains(wd, "/app") || !strings.Contains(wd, "GREETING=hello") {
		t.Fatalf("config: %s", wd)
	}
	if ps := mustDocker(t, "ps", "-aq", "--filter", "label=berth.build"); ps != "" {
		t.Fatalf("intermediate containers left: %s", ps)
	}
}
