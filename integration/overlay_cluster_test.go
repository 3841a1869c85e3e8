package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestClusterOverlay: services on an overlay network across three hosts find each other by name (the
// service's VIP, and tasks.<name> for the tasks), the VIP balances over every task wherever it runs,
// and a published port reaches every task from every node (the routing mesh).
func TestClusterOverlay(t *testing.T) {
	c := newTestCluster(t, "om1", "ow1", "ow2")
	m1 := c.host("om1")
	if r := m1.docker("network", "create", "-d", "overlay", "nope"); r.code == 0 || !strings.Contains(r.stderr, "not a swarm manager") {
		t.Fatalf("overlay network outside a swarm: %s", r)
	}
	c.workerSwarm()

	if got := m1.must("network", "ls", "--filter", "driver=overlay", "--format", "{{.Name}} {{.Scope}}"); got != "ingress swarm" {
		t.Fatalf("overlay networks after init: %q", got)
	}
	m1.must("network", "create", "-d", "overlay", "appnet")
	if r := m1.docker("network", "create", "-d", "overlay", "appnet"); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("duplicate overlay network: %s", r)
	}
	if got := m1.must("network", "inspect", "appnet", "--format", "{{.Scope}} {{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}}"); got != "swarm overlay 10.0.1.0/24" {
		t.Fatalf("appnet: %q", got)
	}

	// web: one task per node, serving its hostname on 8080, published through the routing mesh.
	m1.must("service", "create", "-d", "--no-resolve-image", "--stop-grace-period", "1s", "--name", "web", "--mode", "global", "--network", "appnet",
		"-p", "8080:8080", busybox, "sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www")
	m1.must("service", "create", "-d", "--no-resolve-image", "--stop-grace-period", "1s", "--name", "client", "--network", "appnet",
		"--constraint", "node.hostname==om1", busybox, "sleep", "1d")
	if r := m1.docker("service", "create", "-d", "--no-resolve-image", "--name", "web2", "-p", "8080:80", busybox, "sleep", "1d"); r.code == 0 || !strings.Contains(r.stderr, "already in use by service 'web'") {
		t.Fatalf("a second service on port 8080: %s", r)
	}
	if r := m1.docker("service", "create", "-d", "--no-resolve-image", "--name", "web3", "--network", "nonet", busybox, "sleep", "1d"); r.code == 0 || !strings.Contains(r.stderr, "nonet") {
		t.Fatalf("a service on a network that does not exist: %s", r)
	}
	if r := m1.docker("network", "rm", "appnet"); r.code == 0 || !strings.Contains(r.stderr, "in use by service") {
		t.Fatalf("removing a network in use: %s", r)
	}
	eventually(t, 30*time.Second, func() string {
		if on := runningOn(m1, "web"); len(on) != 3 {
			return fmt.Sprintf("web running on %v", on)
		}
		if on := runningOn(m1, "client"); on["om1"] != 1 {
			return fmt.Sprintf("client running on %v", on)
		}
		return ""
	})
	vip := m1.must("service", "inspect", "web", "--format", "{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}")
	if n := len(strings.Fields(vip)); n != 2 {
		t.Fatalf("web's virtual IPs (ingress and appnet): %q", vip)
	}
	if got := m1.must("service", "inspect", "web", "--format", "{{range .Endpoint.Ports}}{{.PublishedPort}}:{{.TargetPort}}{{end}}"); got != "8080:8080" {
		t.Fatalf("web's ports: %q", got)
	}

	// Every task's hostname, from the tasks' containers on their nodes.
	want := map[string]bool{}
	for _, h := range c.hosts {
		ids := strings.Fields(h.must("ps", "-q", "--filter", "label=com.docker.swarm.service.name=web"))
		if len(ids) != 1 {
			t.Fatalf("%s runs web tasks %v", h.name, ids)
		}
		want[h.must("exec", ids[0], "hostname")] = true
	}
	client := strings.TrimSpace(m1.must("ps", "-q", "--filter", "label=com.docker.swarm.service.name=client"))

	// Names: tasks.web lists the three tasks' addresses on appnet, web is the VIP.
	eventually(t, 10*time.Second, func() string {
		r := m1.docker("exec", client, "nslookup", "tasks.web")
		if got := addrsIn(r.stdout, "10.0.1."); len(got) != 3 {
			return fmt.Sprintf("tasks.web: %v (%s)", got, r)
		}
		return ""
	})
	r := m1.docker("exec", client, "nslookup", "web")
	webVIP := addrsIn(r.stdout, "10.0.1.")
	if len(webVIP) != 1 || !strings.Contains(vip, webVIP[0]+"/") {
		t.Fatalf("web should resolve to its VIP (%s) alone: %s", vip, r)
	}

	// The VIP spreads connections over all three tasks, two of them on other hosts. (By address: the
	// static busybox's wget cannot use glibc's resolver; and its -T crashes, hence timeout.)
	seen := map[string]bool{}
	eventually(t, 15*time.Second, func() string {
		r := m1.docker("exec", client, "timeout", "3", "wget", "-qO-", "http://"+webVIP[0]+":8080/")
		if r.code == 0 {
			seen[strings.TrimSpace(r.stdout)] = true
		}
		if !sameSet(seen, want) {
			return fmt.Sprintf("through the VIP: reached %v of %v (last: %s)", keys(seen), keys(want), r)
		}
		return ""
	})

	// The routing mesh: every node's published port reaches every task.
	for _, from := range c.hosts {
		for _, to := range c.hosts {
			reached := map[string]bool{}
			eventually(t, 15*time.Second, func() string {
				out, err := exec.Command("ip", "netns", "exec", from.ns, "/bin/busybox", "timeout", "3", "/bin/busybox", "wget", "-qO-",
					"http://"+to.ip+":8080/").CombinedOutput()
				if err == nil {
					reached[strings.TrimSpace(string(out))] = true
				}
				if !sameSet(reached, want) {
					return fmt.Sprintf("from %s to %s:8080 reached %v of %v (last: %v %s)", from.name, to.name, keys(reached), keys(want), err, out)
				}
				return ""
			})
		}
	}

	// And from a node itself, on its loopback address.
	reached := map[string]bool{}
	eventually(t, 15*time.Second, func() string {
		out, err := exec.Command("ip", "netns", "exec", m1.ns, "/bin/busybox", "timeout", "3", "/bin/busybox", "wget", "-qO-",
			"http://127.0.0.1:8080/").CombinedOutput()
		if err == nil {
			reached[strings.TrimSpace(string(out))] = true
		}
		if !sameSet(reached, want) {
			return fmt.Sprintf("127.0.0.1:8080 on om1 reached %v of %v (last: %v %s)", keys(reached), keys(want), err, out)
		}
		return ""
	})

	// Publishing a port on a running service moves its tasks onto the ingress network.
	m1.must("service", "create", "-d", "--no-resolve-image", "--stop-grace-period", "1s", "--name", "late", "--network", "appnet",
		busybox, "sh", "-c", "mkdir -p /www && echo late > /www/index.html && exec httpd -f -p 8080 -h /www")
	eventually(t, 20*time.Second, func() string {
		if on := runningOn(m1, "late"); sum(on) != 1 {
			return fmt.Sprintf("late running on %v", on)
		}
		if got := serviceReplicas(m1, "late"); got != "1/1" { // no --replicas: one
			return "late's replicas: " + got
		}
		return ""
	})
	m1.must("service", "update", "-d", "--publish-add", "9090:8080", "late")
	eventually(t, 20*time.Second, func() string {
		out, err := exec.Command("ip", "netns", "exec", c.hosts[1].ns, "/bin/busybox", "timeout", "3", "/bin/busybox", "wget", "-qO-",
			"http://"+m1.ip+":9090/").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "late" {
			return fmt.Sprintf("port 9090 after --publish-add: %v %s", err, out)
		}
		return ""
	})

	m1.must("service", "rm", "web", "client", "late")
	eventually(t, 20*time.Second, func() string {
		if r := m1.docker("network", "rm", "appnet"); r.code != 0 {
			return "network rm appnet: " + r.String()
		}
		return ""
	})
	eventually(t, 10*time.Second, func() string {
		for _, h := range c.hosts {
			if got := svcTaskContainers(h, true); len(got) > 0 {
				return fmt.Sprintf("%s still has task containers: %v", h.name, got)
			}
		}
		return ""
	})
	// appnet goes from every node once its containers have stopped; ingress stays.
	eventually(t, 10*time.Second, func() string {
		for _, h := range c.hosts {
			if nss, _ := filepath.Glob(filepath.Join(h.exec, "overlay", "ov-*")); len(nss) != 1 {
				return fmt.Sprintf("%s has overlay namespaces %v, want ingress's alone", h.name, nss)
			}
		}
		return ""
	})
}

var ipv4RE = regexp.MustCompile(`\b(\d+\.\d+\.\d+\.\d+)\b`)

// addrsIn lists the distinct addresses starting with prefix in nslookup's answers (after the server's
// own address, which comes first).
func addrsIn(out, prefix string) []string {
	if _, ans, ok := strings.Cut(out, "Name:"); ok {
		out = ans
	} else {
		out = ""
	}
	set := map[string]bool{}
	for _, m := range ipv4RE.FindAllString(out, -1) {
		if strings.HasPrefix(m, prefix) {
			set[m] = true
		}
	}
	return keys(set)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
