package integration

import (
	"strconv"
	"strings"
	"testing"
)

// TestBuildRunOptions: docker build --add-host, --shm-size and --ulimit reach every RUN container.
func TestBuildRunOptions(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag+":docker", tag+":berth")
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\n" +
		"RUN grep buildhost /etc/hosts > /hosts; df -k /dev/shm | tail -n 1 > /shm; ulimit -n > /nofile\n"})
	args := []string{"--no-cache", "--add-host", "buildhost:10.9.8.7", "--shm-size", "32m", "--ulimit", "nofile=512:1024", "."}
	if r := legacyBuild(t, dir, append([]string{"-t", tag + ":docker"}, args...)...); r.code != 0 {
		t.Fatalf("docker build: %s", r)
	}
	if r := berthBuild(t, dir, append([]string{"-t", tag + ":berth"}, args...)...); r.code != 0 {
		t.Fatalf("berth build: %s", r)
	}
	for _, img := range []string{tag + ":docker", tag + ":berth"} {
		out := mustDocker(t, "run", "--rm", img, "cat", "/hosts", "/shm", "/nofile")
		lines := strings.Split(out, "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "10.9.8.7") || !strings.Contains(lines[0], "buildhost") ||
			strings.Fields(lines[1])[1] != "32768" || lines[2] != "512" {
			t.Errorf("%s: RUN saw %q", img, out)
		}
	}
}

// TestBuildWorkdirLayer: WORKDIR makes a missing directory in a layer of its own (root's, 0755, with
// its parents), as Docker's builder does; an existing one adds no layer; the build stays reproducible.
func TestBuildWorkdirLayer(t *testing.T) {
	tag := uniqueName(t)
	rmiOnCleanup(t, tag)
	dir := buildContext(t, map[string]string{"Dockerfile": "FROM busybox\nWORKDIR /tmp\nWORKDIR /app/sub\n" +
		"RUN pwd > /tmp/pwd; stat -c %u:%a /app /app/sub > /tmp/st\n"})
	if r := legacyBuild(t, dir, "-t", tag, "."); r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	layers := func(ref string) int {
		n, _ := strconv.Atoi(mustDocker(t, "inspect", "-f", "{{len .RootFS.Layers}}", ref))
		return n
	}
	if got, base := layers(tag), layers(busybox); got != base+2 {
		t.Errorf("%d layers over busybox's %d, want WORKDIR /app/sub's and RUN's", got, base)
	}
	if h := mustDocker(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}", tag); !strings.Contains(h, "WORKDIR /app/sub") {
		t.Errorf("history: %s", h)
	}
	if out := mustDocker(t, "run", "--rm", tag, "cat", "/tmp/pwd", "/tmp/st"); out != "/app/sub\n0:755\n0:755" {
		t.Errorf("RUN saw %q", out)
	}
	n1 := legacyBuild(t, dir, "--no-cache", "-q", ".")
	n2 := legacyBuild(t, dir, "--no-cache", "-q", ".")
	if n1.code != 0 || strings.TrimSpace(n1.stdout) != strings.TrimSpace(n2.stdout) {
		t.Fatalf("--no-cache builds differ: %s\n%s", n1, n2)
	}
	docker(t, "rmi", strings.TrimSpace(n1.stdout))
}
