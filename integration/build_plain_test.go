package integration

import (
	"strings"
	"testing"
)

// Without DOCKER_BUILDKIT the CLI asks /_ping which builder the daemon has; Berth answers "1" (legacy),
// and the CLI falls back to POST /build when the buildx plugin is missing.
func TestBuildPlainDockerBuild(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag)
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo plain > /p\n"})
	cmd := dockerCmd("build", "-t", tag, ".")
	cmd.Dir = dir
	var envv []string
	for _, e := range cmd.Env {
		if !strings.HasPrefix(e, "DOCKER_BUILDKIT=") {
			envv = append(envv, e)
		}
	}
	cmd.Env = envv
	r := runCmd(t, cmd, "")
	if r.code != 0 {
		t.Fatalf("docker build: %s", r)
	}
	if !strings.Contains(r.stdout, "Step 2/2 : RUN echo plain > /p") {
		t.Fatalf("output: %s", r)
	}
	if out := mustDocker(t, "run", "--rm", tag, "cat", "/p"); out != "plain" {
		t.Fatalf("/p = %q", out)
	}
}
