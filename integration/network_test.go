package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
)

// testBridge is the integration daemon's default bridge, kept apart from an installed berthd's berth0.
const testBridge = "berthit0"

// peer is a network namespace the test made, standing for another host: it is joined to the host by
// a veth pair, hostIP on the host's end and IP on its own.
type peer struct {
	name, IP, hostIP string
}

var peerSeq atomic.Int32

// newPeer creates a peer host; it is removed when the test ends.
func newPeer(t *testing.T) *peer {
	t.Helper()
	n := peerSeq.Add(1)
	p := &peer{name: fmt.Sprintf("berthit-peer%d", n), IP: fmt.Sprintf("10.253.%d.2", 70+n), hostIP: fmt.Sprintf("10.253.%d.1", 70+n)}
	hostEnd, peerEnd := fmt.Sprintf("bitp%dh", n), fmt.Sprintf("bitp%dp", n)
	cmds := [][]string{
		{"netns", "add", p.name},
		{"link", "add", hostEnd, "type", "veth", "peer", "name", peerEnd},
		{"link", "set", peerEnd, "netns", p.name},
		{"addr", "add", p.hostIP + "/24", "dev", hostEnd},
		{"link", "set", hostEnd, "up"},
		{"-n", p.name, "addr", "add", p.IP + "/24", "dev", peerEnd},
		{"-n", p.name, "link", "set", peerEnd, "up"},
		{"-n", p.name, "link", "set", "lo", "up"},
		{"-n", p.name, "route", "add", "default", "via", p.hostIP},
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", hostEnd).Run()
		_ = exec.Command("ip", "netns", "del", p.name).Run()
	})
	for _, c := range cmds {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", c, err, out)
		}
	}
	return p
}

// run starts a command in the peer; it is killed when the test ends.
func (p *peer) start(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.name}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}

func (p *peer) run(t *testing.T, args ...string) result {
	t.Helper()
	return runCmd(t, exec.Command("ip", append([]string{"netns", "exec", p.name}, args...)...), "")
}

// listenIn opens a socket inside the peer's namespace: the socket stays there when the thread leaves.
func (p *peer) listenUDP(t *testing.T, addr string) net.PacketConn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(p.name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		t.Fatal(err)
	}
	pc, lerr := net.ListenPacket("udp4", addr)
	if err := netns.Set(orig); err != nil {
		panic(err) // this thread must not go back to the pool in the wrong namespace
	}
	if lerr != nil {
		t.Fatal(lerr)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// webContainer runs a busybox httpd serving body at / on port 80, with extra docker run args.
func webContainer(t *testing.T, name, body string, args ...string) {
	t.Helper()
	cmd := fmt.Sprintf("mkdir -p /www && echo %s > /www/index.html && exec httpd -f -p 80 -h /www", body)
	all := append(append([]string{"run", "-d", "--name", name}, args...), busybox, "sh", "-c", cmd)
	rmOnCleanup(t, name)
	mustDocker(t, all...)
}

// httpGet fetches url from the host, retrying briefly while a just-started server comes up.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	var last error
	for i := 0; i < 30; i++ {
		resp, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return strings.TrimSpace(string(b))
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// inCtr runs a shell snippet in a throwaway container with extra run args. --init keeps the snippet's
// commands from being the namespace's PID 1, which `timeout` could not kill.
func inCtr(t *testing.T, script string, args ...string) result {
	t.Helper()
	return docker(t, append(append([]string{"run", "--rm", "--init"}, args...), busybox, "sh", "-c", script)...)
}

func mustNetwork(t *testing.T, args ...string) string {
	t.Helper()
	name := args[len(args)-1]
	t.Cleanup(func() { _ = dockerCmd("network", "rm", name).Run() })
	id := mustDocker(t, append([]string{"network", "create"}, args...)...)
	if len(id) >= 12 {
		testBridgesMu.Lock()
		testBridges["br-"+id[:12]] = true
		testBridgesMu.Unlock()
	}
	return id
}

// testBridges are the bridges of networks the tests made, for teardown to remove if the daemon did not.
var (
	testBridgesMu sync.Mutex
	testBridges   = map[string]bool{}
)

func TestNetworkDefaultBridge(t *testing.T) {
	r := inCtr(t, "ip route; echo ---; cat /etc/hosts; echo ---; cat /etc/resolv.conf; echo ---; hostname; ip addr show eth0")
	if r.code != 0 {
		t.Fatal(r)
	}
	parts := strings.Split(r.stdout, "---\n")
	if !regexp.MustCompile(`default via (\d+\.\d+\.\d+\.\d+) dev eth0`).MatchString(parts[0]) {
		t.Errorf("no default route: %q", parts[0])
	}
	if len(parts) != 4 {
		t.Fatalf("output: %s", r)
	}
	host, addrs, _ := strings.Cut(parts[3], "\n")
	m := regexp.MustCompile(`inet (\d+\.\d+\.\d+\.\d+)/`).FindStringSubmatch(addrs)
	if m == nil || !strings.Contains(parts[1], m[1]+"\t"+host) {
		t.Errorf("/etc/hosts lacks %v %s: %q", m, host, parts[1])
	}
	if strings.Contains(parts[2], "nameserver 127.") || !strings.Contains(parts[2], "nameserver ") {
		t.Errorf("resolv.conf should have non-loopback nameservers: %q", parts[2])
	}
	ins := mustDocker(t, "network", "inspect", "bridge", "--format", "{{.Driver}} {{(index .IPAM.Config 0).Subnet}} {{.Options}}")
	if !strings.HasPrefix(ins, "bridge ") || !strings.Contains(ins, testBridge) {
		t.Errorf("bridge network: %q", ins)
	}
}

func TestNetworkOutboundNATAndPublishedPorts(t *testing.T) {
	p := newPeer(t)
	// The peer serves its client's address through CGI, so the test sees what the other host sees.
	www := t.TempDir()
	if err := os.MkdirAll(filepath.Join(www, "cgi-bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/busybox sh\necho 'Content-Type: text/plain'\necho\necho $REMOTE_ADDR\n"
	if err := os.WriteFile(filepath.Join(www, "cgi-bin", "addr"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p.start(t, "/bin/busybox", "httpd", "-f", "-p", p.IP+":9000", "-h", www)

	t.Run("outbound-nat", func(t *testing.T) {
		r := inCtr(t, fmt.Sprintf("for i in 1 2 3 4 5; do timeout 2 wget -qO- http://%s:9000/cgi-bin/addr && exit 0; sleep 0.2; done; exit 1", p.IP))
		if r.code != 0 || strings.TrimSpace(r.stdout) != p.hostIP {
			t.Fatalf("the other host should see the host's address %s: %s", p.hostIP, r)
		}
	})

	name := uniqueName(t)
	webContainer(t, name, "published", "-p", "18080:80", "-p", "18081:8081/udp")
	t.Run("from-host-loopback", func(t *testing.T) {
		if got := httpGet(t, "http://127.0.0.1:18080/"); got != "published" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("from-other-host", func(t *testing.T) {
		r := p.run(t, "/bin/busybox", "timeout", "3", "/bin/busybox", "wget", "-qO-", fmt.Sprintf("http://%s:18080/", p.hostIP))
		if r.code != 0 || strings.TrimSpace(r.stdout) != "published" {
			t.Fatalf("via the host's address: %s", r)
		}
	})
	t.Run("from-another-container", func(t *testing.T) {
		gw := mustDocker(t, "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}")
		r := inCtr(t, fmt.Sprintf("timeout 3 wget -qO- http://%s:18080/", gw))
		if r.code != 0 || strings.TrimSpace(r.stdout) != "published" {
			t.Fatalf("hairpin through the gateway: %s", r)
		}
	})
	t.Run("own-port-through-the-host", func(t *testing.T) {
		gw := mustDocker(t, "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}")
		r := docker(t, "exec", name, "sh", "-c", fmt.Sprintf("timeout 3 wget -qO- http://%s:18080/", gw))
		if r.code != 0 || strings.TrimSpace(r.stdout) != "published" {
			t.Fatalf("hairpin to the container's own published port: %s", r)
		}
	})
	t.Run("port-command", func(t *testing.T) {
		out := mustDocker(t, "port", name)
		if !strings.Contains(out, "80/tcp -> 0.0.0.0:18080") || !strings.Contains(out, "8081/udp -> 0.0.0.0:18081") {
			t.Fatalf("docker port: %q", out)
		}
		ps := mustDocker(t, "ps", "--filter", "name="+name, "--format", "{{.Ports}}")
		if !strings.Contains(ps, "0.0.0.0:18080->80/tcp") {
			t.Fatalf("docker ps ports: %q", ps)
		}
	})
	t.Run("udp", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "udpecho")
		build := exec.Command("go", "build", "-o", bin, "./testdata/udpecho")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building udpecho: %v\n%s", err, out)
		}
		u := uniqueName(t)
		rmOnCleanup(t, u)
		mustDocker(t, "create", "--name", u, "-p", "127.0.0.1:18082:7000/udp", busybox, "/udpecho")
		mustDocker(t, "cp", bin, u+":/udpecho")
		mustDocker(t, "start", u)
		c, err := net.Dial("udp", "127.0.0.1:18082")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		buf := make([]byte, 100)
		for i := 0; i < 25; i++ {
			_, _ = c.Write([]byte("ping"))
			_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if n, err := c.Read(buf); err == nil {
				if got := string(buf[:n]); got != "echo:ping" {
					t.Fatalf("reply %q", got)
				}
				return
			}
		}
		t.Fatal("no UDP reply through the published port")
	})
	t.Run("random-and-ranges", func(t *testing.T) {
		u := uniqueName(t)
		webContainer(t, u, "random", "--expose", "80", "-P", "-p", "18090-18091:90-91")
		out := mustDocker(t, "port", u, "80")
		m := regexp.MustCompile(`0\.0\.0\.0:(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("docker port %s 80: %q", u, out)
		}
		if got := httpGet(t, "http://127.0.0.1:"+m[1]+"/"); got != "random" {
			t.Fatalf("random port %s: %q", m[1], got)
		}
		all := mustDocker(t, "port", u)
		if !strings.Contains(all, "90/tcp -> 0.0.0.0:18090") || !strings.Contains(all, "91/tcp -> 0.0.0.0:18091") {
			t.Fatalf("ranges: %q", all)
		}
	})
	t.Run("conflict", func(t *testing.T) {
		u := uniqueName(t)
		rmOnCleanup(t, u)
		r := docker(t, "run", "-d", "--name", u, "-p", "18080:80", busybox, "sleep", "60")
		if r.code == 0 || !strings.Contains(r.stderr, "port is already allocated") {
			t.Fatalf("a second container on host port 18080: %s", r)
		}
	})
	t.Run("gone-after-stop", func(t *testing.T) {
		mustDocker(t, "rm", "-f", name)
		c := &http.Client{Timeout: time.Second}
		if resp, err := c.Get("http://127.0.0.1:18080/"); err == nil {
			resp.Body.Close()
			t.Fatal("port 18080 still answers after the container was removed")
		}
	})
}

func TestNetworkUserDefinedDNS(t *testing.T) {
	net1 := uniqueName(t)
	mustNetwork(t, "--label", "tier=app", net1)
	db, db2 := uniqueName(t)+"-db", uniqueName(t)+"-db2"
	webContainer(t, db, "db1", "--network", net1, "--network-alias", "database")
	webContainer(t, db2, "db2", "--network", net1, "--network-alias", "database")

	r := inCtr(t, fmt.Sprintf("timeout 3 wget -qO- http://%s/ && nslookup database && grep nameserver /etc/resolv.conf", db), "--network", net1)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "db1\n") {
		t.Fatalf("by container name: %s", r)
	}
	ips := regexp.MustCompile(`Address: (\d+\.\d+\.\d+\.\d+)\n`).FindAllStringSubmatch(r.stdout, -1)
	if len(ips) != 2 {
		t.Fatalf("the alias shared by two containers should give both addresses: %s", r)
	}
	gw := mustDocker(t, "network", "inspect", net1, "--format", "{{(index .IPAM.Config 0).Gateway}}")
	if !strings.Contains(r.stdout, "nameserver "+gw) {
		t.Fatalf("resolv.conf should point at the embedded DNS on %s: %s", gw, r)
	}
	seen := map[string]bool{}
	for i := 0; i < 12 && len(seen) < 2; i++ {
		out := inCtr(t, "timeout 3 wget -qO- http://database/", "--network", net1)
		seen[strings.TrimSpace(out.stdout)] = true
	}
	if !seen["db1"] || !seen["db2"] {
		t.Errorf("round robin over the alias reached only %v", seen)
	}

	t.Run("forwards-other-names", func(t *testing.T) {
		p := newPeer(t)
		pc := p.listenUDP(t, p.IP+":53")
		srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
			m := new(dns.Msg)
			m.SetReply(q)
			if q.Question[0].Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("10.9.8.7")})
			}
			_ = w.WriteMsg(m)
		})}
		go func() { _ = srv.ActivateAndServe() }()
		t.Cleanup(func() { _ = srv.Shutdown() })
		r := inCtr(t, "nslookup outside.example.test", "--network", net1, "--dns", p.IP)
		if r.code != 0 || !strings.Contains(r.stdout, "10.9.8.7") {
			t.Fatalf("a name not on the network goes to the container's --dns server: %s", r)
		}
	})

	t.Run("rename", func(t *testing.T) {
		renamed := db2 + "-renamed"
		mustDocker(t, "rename", db2, renamed)
		rmOnCleanup(t, renamed)
		r := inCtr(t, "timeout 3 wget -qO- http://"+renamed+"/", "--network", net1)
		if r.code != 0 || strings.TrimSpace(r.stdout) != "db2" {
			t.Fatalf("the new name after rename: %s", r)
		}
		mustDocker(t, "rename", renamed, db2)
	})
	t.Run("inspect-and-ls", func(t *testing.T) {
		out := mustDocker(t, "network", "inspect", net1, "--format", "{{len .Containers}} {{.Labels}}")
		if out != "2 map[tier:app]" {
			t.Errorf("network inspect: %q", out)
		}
		ls := mustDocker(t, "network", "ls", "--filter", "label=tier=app", "--format", "{{.Name}} {{.Driver}}")
		if ls != net1+" bridge" {
			t.Errorf("network ls --filter: %q", ls)
		}
		ip := mustDocker(t, "inspect", db, "--format", "{{(index .NetworkSettings.Networks \""+net1+"\").IPAddress}}")
		if net.ParseIP(ip) == nil {
			t.Errorf("container inspect IPAddress on %s: %q", net1, ip)
		}
	})
}

func TestNetworkIsolationAndInternal(t *testing.T) {
	a, b, internal := uniqueName(t)+"-a", uniqueName(t)+"-b", uniqueName(t)+"-int"
	mustNetwork(t, a)
	mustNetwork(t, "--subnet", "10.252.9.0/24", "--gateway", "10.252.9.254", "--ip-range", "10.252.9.128/25", b)
	mustNetwork(t, "--internal", internal)
	wa := uniqueName(t) + "-wa"
	webContainer(t, wa, "on-a", "--network", a)
	ipA := mustDocker(t, "inspect", wa, "--format", "{{(index .NetworkSettings.Networks \""+a+"\").IPAddress}}")

	r := inCtr(t, "ip addr show eth0; ip route", "--network", b)
	if !regexp.MustCompile(`inet 10\.252\.9\.(12[89]|1[3-9]\d|2[0-4]\d|25[0-3])/24`).MatchString(r.stdout) || !strings.Contains(r.stdout, "default via 10.252.9.254") {
		t.Fatalf("address from --ip-range and --gateway: %s", r)
	}
	r = inCtr(t, "timeout 2 wget -qO- http://"+ipA+"/", "--network", b)
	if r.code == 0 {
		t.Fatalf("a container on another network reached %s: %s", ipA, r)
	}
	r = inCtr(t, "timeout 2 wget -qO- http://"+ipA+"/", "--network", a)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "on-a" {
		t.Fatalf("same network: %s", r)
	}
	// An internal network reaches its own members but nothing outside.
	p := newPeer(t)
	p.start(t, "/bin/busybox", "nc", "-ll", "-p", "9100", "-e", "/bin/busybox", "echo", "peer")
	wi := uniqueName(t) + "-wi"
	webContainer(t, wi, "internal", "--network", internal)
	r = inCtr(t, fmt.Sprintf("timeout 3 wget -qO- http://%s/; timeout 2 nc %s 9100 </dev/null", wi, p.IP), "--network", internal)
	if !strings.Contains(r.stdout, "internal") || strings.Contains(r.stdout, "peer") {
		t.Fatalf("internal network: %s", r)
	}
	r = inCtr(t, fmt.Sprintf("for i in 1 2 3; do timeout 2 nc %s 9100 </dev/null && exit 0; sleep 0.3; done", p.IP))
	if !strings.Contains(r.stdout, "peer") {
		t.Fatalf("the default bridge should reach the other host: %s", r)
	}
}

func TestNetworkConnectDisconnect(t *testing.T) {
	since := fmt.Sprint(time.Now().Add(-time.Second).Unix())
	front, back := uniqueName(t)+"-front", uniqueName(t)+"-back"
	mustNetwork(t, front)
	mustNetwork(t, "--subnet", "10.252.10.0/24", back)
	db := uniqueName(t) + "-db"
	webContainer(t, db, "db", "--network", back, "--ip", "10.252.10.50")
	app := uniqueName(t) + "-app"
	rmOnCleanup(t, app)
	mustDocker(t, "run", "-d", "--name", app, "--network", front, busybox, "sleep", "300")
	if r := docker(t, "exec", app, "timeout", "2", "wget", "-qO-", "http://"+db+"/"); r.code == 0 {
		t.Fatalf("reached db before connecting: %s", r)
	}
	mustDocker(t, "network", "connect", "--alias", "api", back, app)
	r := docker(t, "exec", app, "sh", "-c", "ip addr show eth1 && timeout 3 wget -qO- http://10.252.10.50/ && timeout 3 wget -qO- http://"+db+"/")
	if r.code != 0 || strings.Count(r.stdout, "db\n") != 2 {
		t.Fatalf("after connect: %s", r)
	}
	r = inCtr(t, "nslookup api", "--network", back)
	if r.code != 0 || !strings.Contains(r.stdout, "10.252.10.") {
		t.Fatalf("the alias given at connect: %s", r)
	}
	if r := docker(t, "network", "connect", back, app); r.code == 0 || !strings.Contains(r.stderr, "already exists in network") {
		t.Fatalf("second connect: %s", r)
	}
	if r := docker(t, "network", "rm", back); r.code == 0 || !strings.Contains(r.stderr, "has active endpoints") {
		t.Fatalf("removing a network in use: %s", r)
	}
	mustDocker(t, "network", "disconnect", back, app)
	r = docker(t, "exec", app, "sh", "-c", "ip link show eth1; timeout 2 wget -qO- http://10.252.10.50/")
	if r.code == 0 || strings.Contains(r.stdout, "db") {
		t.Fatalf("after disconnect: %s", r)
	}
	// Connected while stopped: joined at the next start.
	mustDocker(t, "stop", "-t", "0", app)
	mustDocker(t, "network", "connect", back, app)
	mustDocker(t, "start", app)
	if r := docker(t, "exec", app, "timeout", "3", "wget", "-qO-", "http://"+db+"/"); r.code != 0 {
		t.Fatalf("connect while stopped: %s", r)
	}
	ev := mustDocker(t, "events", "--since", since, "--until", fmt.Sprint(time.Now().Unix()+1),
		"--filter", "type=network", "--filter", "network="+back, "--format", "{{.Action}}")
	for _, want := range []string{"create", "connect", "disconnect"} {
		if !strings.Contains(ev, want) {
			t.Errorf("network events lack %q: %q", want, ev)
		}
	}
}

func TestNetworkModesAndNames(t *testing.T) {
	t.Run("host", func(t *testing.T) {
		p := newPeer(t)
		hn, _ := os.Hostname()
		r := inCtr(t, "hostname; ip addr", "--network", "host")
		if r.code != 0 || !strings.HasPrefix(r.stdout, hn+"\n") || !strings.Contains(r.stdout, p.hostIP) {
			t.Fatalf("host network: %s", r)
		}
	})
	t.Run("none", func(t *testing.T) {
		r := inCtr(t, "ip -o link | wc -l; cat /etc/resolv.conf", "--network", "none")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "1\n") {
			t.Fatalf("none should have only lo: %s", r)
		}
	})
	t.Run("container", func(t *testing.T) {
		base := uniqueName(t)
		webContainer(t, base, "shared", "--hostname", "basehost")
		r := inCtr(t, "hostname; timeout 3 wget -qO- http://127.0.0.1/", "--network", "container:"+base)
		if r.code != 0 || r.stdout != "basehost\nshared\n" {
			t.Fatalf("container network mode: %s", r)
		}
		if r := docker(t, "run", "--rm", "--network", "container:"+base, "-p", "80:80", busybox, "true"); r.code == 0 {
			t.Fatalf("publishing with container: network mode should fail: %s", r)
		}
	})
	t.Run("names-and-resolver-options", func(t *testing.T) {
		gw := mustDocker(t, "network", "inspect", "bridge", "--format", "{{(index .IPAM.Config 0).Gateway}}")
		r := inCtr(t, "cat /etc/hosts /etc/resolv.conf; hostname; ip link show eth0",
			"--add-host", "db.example:10.1.2.3", "--add-host", "gw:host-gateway", "--dns", "10.0.0.53",
			"--dns-search", "corp.example", "--dns-option", "ndots:3", "--hostname", "web1", "--domainname", "example.org",
			"--mac-address", "92:d0:c6:0a:29:33")
		for _, want := range []string{"10.1.2.3\tdb.example", gw + "\tgw", "\tweb1.example.org web1", "nameserver 10.0.0.53",
			"search corp.example", "options ndots:3", "\nweb1\n", "92:d0:c6:0a:29:33"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("missing %q in %s", want, r)
			}
		}
	})
	t.Run("link", func(t *testing.T) {
		target := uniqueName(t)
		webContainer(t, target, "linked")
		r := inCtr(t, "timeout 3 wget -qO- http://dbalias/", "--link", target+":dbalias")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "linked" {
			t.Fatalf("--link: %s", r)
		}
	})
	t.Run("static-ip", func(t *testing.T) {
		n := uniqueName(t)
		mustNetwork(t, "--subnet", "10.252.11.0/24", n)
		r := inCtr(t, "ip addr show eth0", "--network", n, "--ip", "10.252.11.77")
		if !strings.Contains(r.stdout, "inet 10.252.11.77/24") {
			t.Fatalf("--ip: %s", r)
		}
	})
}

func TestNetworkBadInput(t *testing.T) {
	n := uniqueName(t)
	mustNetwork(t, "--subnet", "10.252.12.0/24", n)
	rmOnCleanup(t, n+"-c")
	mustDocker(t, "create", "--name", n+"-c", busybox, "true")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "--subnet", "10.252.12.128/25", n + "-x"}, "Pool overlaps with other one on this address space"},
		{[]string{"network", "create", n}, "network with name " + n + " already exists"},
		{[]string{"network", "create", "bad name!"}, "invalid network name"},
		{[]string{"network", "rm", "bridge"}, "bridge is a pre-defined network and cannot be removed"},
		{[]string{"network", "connect", "no-such-net", n + "-c"}, "network no-such-net not found"},
		{[]string{"run", "--rm", "--network", "no-such-net", busybox, "true"}, "network no-such-net not found"},
		{[]string{"run", "--rm", "--ip", "172.17.5.5", busybox, "true"}, "user specified IP address is supported on user defined networks only"},
		{[]string{"run", "--rm", "--network", n, "--ip", "10.99.0.5", busybox, "true"}, "no configured subnet or ip-range contain the IP address 10.99.0.5"},
		{[]string{"run", "--rm", "-p", "abc:80", busybox, "true"}, "invalid"},
		{[]string{"run", "--rm", "-p", "99999:80", busybox, "true"}, "invalid"},
	}
	for _, c := range cases {
		r := docker(t, c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("docker %s: want an error with %q, got %s", strings.Join(c.args, " "), c.want, r)
		}
	}
	// The berth CLI says the same.
	if r := berth(t, "network", "rm", "bridge"); r.code == 0 || !strings.Contains(r.stderr, "pre-defined network") {
		t.Errorf("berth network rm bridge: %s", r)
	}
	out := mustDocker(t, "network", "prune", "-f")
	if !strings.Contains(out, n) {
		t.Errorf("network prune should remove the unused %s: %q", n, out)
	}
}

func TestNetworkSurvivesDaemonKill(t *testing.T) {
	n := uniqueName(t)
	mustNetwork(t, n)
	web := uniqueName(t) + "-web"
	webContainer(t, web, "alive", "--network", n, "-p", "18180:80")
	if got := httpGet(t, "http://127.0.0.1:18180/"); got != "alive" {
		t.Fatalf("before: %q", got)
	}
	stopDaemon(syscall.SIGKILL)
	if got := httpGet(t, "http://127.0.0.1:18180/"); got != "alive" {
		t.Fatalf("with berthd dead: %q", got)
	}
	if err := startDaemon(); err != nil {
		t.Fatal(err)
	}
	if got := httpGet(t, "http://127.0.0.1:18180/"); got != "alive" {
		t.Fatalf("after restart: %q", got)
	}
	r := inCtr(t, "timeout 3 wget -qO- http://"+web+"/", "--network", n)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "alive" {
		t.Fatalf("DNS after restart: %s", r)
	}
	veth := mustDocker(t, "inspect", web, "--format", "{{.NetworkSettings.SandboxKey}}")
	mustDocker(t, "rm", "-f", web)
	if _, err := os.Stat(veth); err == nil {
		t.Errorf("namespace %s outlived its container", veth)
	}
	c := &http.Client{Timeout: time.Second}
	if resp, err := c.Get("http://127.0.0.1:18180/"); err == nil {
		resp.Body.Close()
		t.Error("port still published after removal")
	}
}

// TestNetworkNoLeaks runs 500 short containers, some with published ports, and then counts what the
// host has: veths on our bridge, namespace pins, rules in the port chain.
func TestNetworkNoLeaks(t *testing.T) {
	c := sdk(t)
	ctx := ctxT(t, 5*time.Minute)
	before := ourVeths(t)
	const total, workers = 500, 4
	var wg sync.WaitGroup
	var failed atomic.Int32
	var next atomic.Int32
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1))
				if i > total || failed.Load() > 0 {
					return
				}
				if err := shortLived(ctx, c, i); err != nil {
					t.Errorf("cycle %d: %v", i, err)
					failed.Add(1)
					return
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return
	}
	// Veths go in the background after each exit: give the last ones a moment.
	after := ourVeths(t)
	for i := 0; i < 100 && after != before; i++ {
		time.Sleep(100 * time.Millisecond)
		after = ourVeths(t)
	}
	if after != before {
		t.Errorf("veths on %s: %d before, %d after", testBridge, before, after)
	}
	ents, _ := os.ReadDir(filepath.Join(env.execRoot, "netns"))
	if len(ents) != 0 {
		t.Errorf("%d namespace pins left", len(ents))
	}
	out, _ := exec.Command("nft", "list", "chain", "ip", "berth-"+testBridge, "ports").CombinedOutput()
	if strings.Contains(string(out), "dnat") {
		t.Errorf("port rules left:\n%s", out)
	}
}

func shortLived(ctx context.Context, c *client.Client, i int) error {
	hc := &container.HostConfig{}
	if i%10 == 0 {
		hc.PortBindings = nat.PortMap{"80/tcp": {{HostPort: fmt.Sprint(19000 + i)}}}
	}
	resp, err := c.ContainerCreate(ctx, &container.Config{Image: busybox, Cmd: []string{"true"}}, hc, nil, nil, "")
	if err != nil {
		return err
	}
	defer func() {
		_ = c.ContainerRemove(context.WithoutCancel(ctx), resp.ID, container.RemoveOptions{Force: true})
	}()
	waitC, errC := c.ContainerWait(ctx, resp.ID, container.WaitConditionNextExit)
	if err := c.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return err
	}
	select {
	case w := <-waitC:
		if w.StatusCode != 0 {
			return fmt.Errorf("exit %d", w.StatusCode)
		}
	case err := <-errC:
		return err
	}
	return nil
}

// ourVeths counts the interfaces enslaved to the test daemon's default bridge.
func ourVeths(t *testing.T) int {
	out, err := exec.Command("ip", "-o", "link", "show", "master", testBridge).Output()
	if err != nil {
		return 0
	}
	if strings.TrimSpace(string(out)) == "" {
		return 0
	}
	return len(strings.Split(strings.TrimSpace(string(out)), "\n"))
}
