package integration

import (
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
