package integration

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestComposeThreeTier brings up a web -> app -> db application with Docker Compose (Debian's
// docker-compose, through docker-py): two networks, service-name DNS, an alias and a published port.
func TestComposeThreeTier(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed (apt-get install docker-compose)")
	}
	project := strings.ReplaceAll(uniqueName(t), "-", "")
	compose := func(args ...string) result {
		cmd := exec.Command(bin, append([]string{"-p", project, "-f", "testdata/compose3tier/docker-compose.yml"}, args...)...)
		cmd.Env = append(cmd.Environ(), "DOCKER_HOST=unix://"+env.sock)
		return runCmd(t, cmd, "")
	}
	t.Cleanup(func() { compose("down", "-t", "0") })
	if r := compose("up", "-d"); r.code != 0 {
		t.Fatalf("compose up: %s", r)
	}
	if got := httpGet(t, "http://127.0.0.1:18400/cgi-bin/q"); got != "db-data" {
		t.Fatalf("web -> app -> db: %q", got)
	}
	r := docker(t, "exec", project+"_web_1", "sh", "-c", "wget -qO- http://db:5432/ || echo unreachable")
	if !strings.Contains(r.stdout, "unreachable") {
		t.Fatalf("web is not on the back network and must not reach db: %s", r)
	}
	if r := compose("down", "-t", "0"); r.code != 0 {
		t.Fatalf("compose down: %s", r)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if out := mustDocker(t, "network", "ls", "--filter", "name="+project, "-q"); out == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("compose down left networks behind")
}
