package api

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

const dockerCLI = "/usr/local/bin/docker"

// runDocker runs the stock docker CLI against env's socket, with a throwaway config directory.
func runDocker(t *testing.T, env *testEnv, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "DOCKER_CONFIG=" + t.TempDir(), "DOCKER_HOST=unix://" + env.sock}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDockerCLI(t *testing.T) {
	if _, err := os.Stat(dockerCLI); err != nil {
		t.Skip("no docker CLI:", err)
	}
	env := startServer(t)

	out := runDocker(t, env, "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}")
	if strings.TrimSpace(out) != "0.0.1-test 1.51 linux" {
		t.Errorf("docker version: %q", out)
	}
	out = runDocker(t, env, "version")
	if !strings.Contains(out, "Engine:") || !strings.Contains(out, "0.0.1-test") {
		t.Errorf("docker version:\n%s", out)
	}
	out = runDocker(t, env, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "localhost:5000/*")
	if strings.TrimSpace(out) != "localhost:5000/x:1" {
		t.Errorf("docker image ls: %q", out)
	}
	env.images.mu.Lock()
	got := env.images.listF.Get("reference")
	env.images.mu.Unlock()
	if len(got) != 1 || got[0] != "localhost:5000/*" {
		t.Errorf("image ls filter reached backend as %q", got)
	}
	out = runDocker(t, env, "image", "ls")
	if !strings.Contains(out, "busybox") || !strings.Contains(out, "REPOSITORY") {
		t.Errorf("docker image ls:\n%s", out)
	}
	out = runDocker(t, env, "inspect", "--format", "{{.Name}}", "web")
	if strings.TrimSpace(out) != "/web" {
		t.Errorf("docker inspect: %q", out)
	}
	out = runDocker(t, env, "ps", "-a", "--format", "{{.Names}}")
	if !strings.Contains(out, "web") || !strings.Contains(out, "term") {
		t.Errorf("docker ps -a: %q", out)
	}
	// start -a drives attach (hijacked), wait and start in the CLI's own order.
	env.ctrs.waitCh <- container.WaitResponse{StatusCode: 0}
	out = runDocker(t, env, "start", "-a", "web")
	if out != "hello\nwarning\nbye\n" {
		t.Errorf("docker start -a: %q", out)
	}
	out = runDocker(t, env, "logs", "web")
	if !strings.Contains(out, "line 1") || !strings.Contains(out, "oops 1") {
		t.Errorf("docker logs: %q", out)
	}
}
