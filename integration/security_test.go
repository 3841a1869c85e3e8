package integration

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// probeImage commits busybox plus testdata/secprobe (a static Go program that tries one privileged
// operation) and, for the escape test, a script whose interpreter is /proc/self/exe. It is removed when
// the test ends.
func probeImage(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "secprobe")
	build := exec.Command("go", "build", "-o", bin, "./testdata/secprobe")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building secprobe: %v\n%s", err, out)
	}
	evil := filepath.Join(t.TempDir(), "evil")
	if err := os.WriteFile(evil, []byte("#!/proc/self/exe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	name := uniqueName(t)
	img := name + ":probe"
	mustDocker(t, "create", "--name", name, busybox, "true")
	rmOnCleanup(t, name)
	mustDocker(t, "cp", bin, name+":/secprobe")
	mustDocker(t, "cp", evil, name+":/evil")
	mustDocker(t, "commit", name, img)
	t.Cleanup(func() { _ = dockerCmd("rmi", "-f", img).Run() })
	return img
}

// TestSecurityDefaults tries, from inside containers, what Docker's defaults forbid (capabilities,
// seccomp, read-only and masked /proc paths) and checks that each works only with the flag that grants it.
func TestSecurityDefaults(t *testing.T) {
	img := probeImage(t)
	cases := []struct {
		op    string
		flags []string
		ok    bool
	}{
		{"mount", nil, false},
		{"mount", []string{"--security-opt", "seccomp=unconfined"}, false}, // still no CAP_SYS_ADMIN
		{"mount", []string{"--cap-add", "SYS_ADMIN"}, true},                // the profile follows the capability
		{"mount", []string{"--privileged"}, true},
		{"unshare-mnt", nil, false},
		{"unshare-mnt", []string{"--cap-add", "SYS_ADMIN"}, true},
		{"unshare-user", nil, false},
		{"unshare-user", []string{"--security-opt", "seccomp=unconfined"}, true},
		{"keyctl", nil, false},
		{"keyctl", []string{"--security-opt", "seccomp=unconfined"}, true},
		{"keyctl", []string{"--privileged"}, true},
		{"chown", nil, true},
		{"chown", []string{"--cap-drop", "CHOWN"}, false},
		{"rawsock", nil, true},
		{"rawsock", []string{"--cap-drop", "NET_RAW"}, false},
		{"sysctl", nil, false},
		{"sysctl", []string{"--cap-add", "SYS_ADMIN", "--security-opt", "seccomp=unconfined"}, false},
		{"sysctl", []string{"--privileged"}, true},
		{"masked", nil, false},
		{"masked", []string{"--privileged"}, true},
		{"masked", []string{"--security-opt", "systempaths=unconfined"}, true},
		{"sysctl", []string{"--security-opt", "systempaths=unconfined"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.op+strings.Join(tc.flags, ""), func(t *testing.T) {
			args := append(append([]string{"run", "--rm"}, tc.flags...), img, "/secprobe", tc.op)
			r := docker(t, args...)
			got := r.code == 0 && strings.TrimSpace(r.stdout) == "ok"
			if got != tc.ok {
				t.Fatalf("%s with %v: worked=%v, want %v\n%s", tc.op, tc.flags, got, tc.ok, r)
			}
			if !tc.ok && r.code != 1 {
				t.Fatalf("the probe should have run and failed, not the container: %s", r)
			}
		})
	}

	t.Run("berth CLI", func(t *testing.T) {
		for _, tc := range []struct {
			op    string
			flags []string
			ok    bool
		}{
			{"keyctl", nil, false},
			{"keyctl", []string{"--security-opt", "seccomp=unconfined"}, true},
			{"masked", nil, false},
			{"masked", []string{"--security-opt", "systempaths=unconfined"}, true},
			{"rawsock", []string{"--cap-drop", "net_raw"}, false},
		} {
			r := berth(t, append(append([]string{"run", "--rm"}, tc.flags...), img, "/secprobe", tc.op)...)
			if got := r.code == 0; got != tc.ok {
				t.Errorf("berth: %s with %v: worked=%v, want %v\n%s", tc.op, tc.flags, got, tc.ok, r)
			}
		}
	})

	t.Run("ping needs NET_RAW", func(t *testing.T) {
		if r := docker(t, "run", "--rm", img, "ping", "-c", "1", "-W", "2", "127.0.0.1"); r.code != 0 {
			t.Fatalf("ping by default: %s", r)
		}
		r := docker(t, "run", "--rm", "--cap-drop", "NET_RAW", img, "ping", "-c", "1", "-W", "2", "127.0.0.1")
		if r.code == 0 {
			t.Fatalf("ping without NET_RAW worked: %s", r)
		}
	})

	t.Run("exec is filtered too", func(t *testing.T) {
		name := uniqueName(t)
		mustDocker(t, "run", "-d", "--name", name, img, "sleep", "300")
		rmOnCleanup(t, name)
		if r := docker(t, "exec", name, "/secprobe", "keyctl"); r.code != 1 {
			t.Fatalf("keyctl in exec: %s", r)
		}
		// exec --privileged adds capabilities, not a way out of the container's profile.
		if r := docker(t, "exec", "--privileged", name, "/secprobe", "keyctl"); r.code != 1 {
			t.Fatalf("keyctl in exec --privileged: %s", r)
		}
		if r := docker(t, "exec", name, "/secprobe", "chown"); r.code != 0 {
			t.Fatalf("chown in exec: %s", r)
		}
		free := uniqueName(t) + "-u"
		mustDocker(t, "run", "-d", "--name", free, "--security-opt", "seccomp=unconfined", img, "sleep", "300")
		rmOnCleanup(t, free)
		if r := docker(t, "exec", free, "/secprobe", "keyctl"); r.code != 0 {
			t.Fatalf("keyctl in exec of an unconfined container: %s", r)
		}
	})

	t.Run("runc enforces the same spec", func(t *testing.T) {
		if _, err := exec.LookPath("runc"); err != nil {
			t.Skip("runc not installed")
		}
		for _, tc := range []struct {
			op    string
			flags []string
			ok    bool
		}{
			{"keyctl", nil, false},
			{"keyctl", []string{"--security-opt", "seccomp=unconfined"}, true},
			{"unshare-mnt", nil, false},
			{"unshare-mnt", []string{"--cap-add", "SYS_ADMIN"}, true},
			{"chown", []string{"--cap-drop", "CHOWN"}, false},
		} {
			args := append(append([]string{"run", "--rm", "--runtime", "runc"}, tc.flags...), img, "/secprobe", tc.op)
			r := docker(t, args...)
			if got := r.code == 0; got != tc.ok {
				t.Errorf("runc: %s with %v: worked=%v, want %v\n%s", tc.op, tc.flags, got, tc.ok, r)
			}
		}
		r := docker(t, "run", "--rm", "--runtime", "runc", "--device", "/dev/loop-control:/dev/lc", img, "sh", "-c", ": < /dev/lc && echo opened")
		if r.code != 0 || !strings.Contains(r.stdout, "opened") {
			t.Errorf("runc --device: %s", r)
		}
	})

	t.Run("custom profile", func(t *testing.T) {
		prof := writeTemp(t, `{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
    {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
  ]
}`)
		name := uniqueName(t)
		r := docker(t, "run", "--name", name, "--security-opt", "seccomp="+prof, img, "sh", "-c",
			"mkdir /tmp/d; echo mkdir=$?; touch /tmp/f; chmod 600 /tmp/f; echo chmod=$?; keyctl=$(/secprobe keyctl); echo keyctl=$keyctl")
		rmOnCleanup(t, name)
		if r.code != 0 || !strings.Contains(r.stdout, "mkdir=1") || !strings.Contains(r.stdout, "chmod=1") ||
			!strings.Contains(r.stderr+r.stdout, "Operation not permitted") || !strings.Contains(r.stdout+r.stderr, "Permission denied") ||
			!strings.Contains(r.stdout, "keyctl=ok") {
			t.Fatalf("custom profile not applied as written: %s", r)
		}
		// Inspect shows what was asked, the profile's content as the CLI sent it.
		var opts []string
		if err := json.Unmarshal([]byte(mustDocker(t, "inspect", "-f", "{{json .HostConfig.SecurityOpt}}", name)), &opts); err != nil {
			t.Fatal(err)
		}
		if len(opts) != 1 || !strings.HasPrefix(opts[0], "seccomp={") || !strings.Contains(opts[0], "mkdirat") {
			t.Fatalf("SecurityOpt = %q", opts)
		}
		un := uniqueName(t) + "-u"
		mustDocker(t, "create", "--name", un, "--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges", img)
		rmOnCleanup(t, un)
		if got := mustDocker(t, "inspect", "-f", "{{json .HostConfig.SecurityOpt}}", un); got != `["seccomp=unconfined","no-new-privileges"]` {
			t.Fatalf("SecurityOpt = %s", got)
		}
	})

	t.Run("no-new-privileges", func(t *testing.T) {
		r := docker(t, "run", "--rm", "--security-opt", "no-new-privileges", img, "grep", "NoNewPrivs", "/proc/self/status")
		if r.code != 0 || !strings.Contains(r.stdout, "1") {
			t.Fatalf("no_new_privs not set: %s", r)
		}
		r = docker(t, "run", "--rm", img, "grep", "-E", "NoNewPrivs|Seccomp:", "/proc/self/status")
		if r.code != 0 || !strings.Contains(r.stdout, "NoNewPrivs:\t0") || !strings.Contains(r.stdout, "Seccomp:\t2") {
			t.Fatalf("default: want no_new_privs off and a seccomp filter: %s", r)
		}
		r = docker(t, "run", "--rm", "--privileged", img, "grep", "Seccomp:", "/proc/self/status")
		if r.code != 0 || !strings.Contains(r.stdout, "Seccomp:\t0") {
			t.Fatalf("privileged: want no seccomp filter: %s", r)
		}
	})
}

// TestSecurityBadInput: every malformed security option fails the create with Docker's message, and
// leaves no container behind.
func TestSecurityBadInput(t *testing.T) {
	badJSON := writeTemp(t, `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [`)
	badAction := writeTemp(t, `{"defaultAction": "SCMP_ACT_SOMETIMES"}`)
	badOp := writeTemp(t, `{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NEAR"}]}]}`)
	cases := []struct {
		flags []string
		msg   string
	}{
		{[]string{"--cap-add", "FOO"}, `invalid CapAdd: unknown capability: "CAP_FOO"`},
		{[]string{"--cap-drop", "BAR"}, `invalid CapDrop: unknown capability: "CAP_BAR"`},
		{[]string{"--security-opt", "seccomp=" + badJSON}, "compacting json for seccomp profile"},
		{[]string{"--security-opt", "seccomp=/nonexistent/profile.json"}, "opening seccomp profile (/nonexistent/profile.json) failed"},
		{[]string{"--security-opt", "seccomp=" + badAction}, "SCMP_ACT_SOMETIMES"},
		{[]string{"--security-opt", "seccomp=" + badOp}, "SCMP_CMP_NEAR"},
		{[]string{"--security-opt", "foo=bar"}, `invalid --security-opt 2: "foo=bar"`},
		{[]string{"--security-opt", "no-new-privileges=maybe"}, `invalid --security-opt 2: "no-new-privileges=maybe"`},
		{[]string{"--device", "/dev/nope"}, `error gathering device information while adding custom device "/dev/nope": no such file or directory`},
		{[]string{"--device", "/etc/passwd"}, `error gathering device information while adding custom device "/etc/passwd": not a device node`},
		{[]string{"--device-cgroup-rule", "x 1:2 rwm"}, `invalid device cgroup format 'x 1:2 rwm'`},
	}
	for _, tc := range cases {
		name := uniqueName(t)
		for _, cli := range []string{"docker", "berth"} {
			args := append(append([]string{"run", "--name", name}, tc.flags...), busybox, "true")
			var r result
			if cli == "docker" {
				r = docker(t, args...)
			} else {
				r = berth(t, args...)
			}
			if r.code == 0 || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("%s %v: want failure with %q, got %s", cli, tc.flags, tc.msg, r)
			}
			if out := mustDocker(t, "ps", "-aq", "--filter", "name=^"+name+"$"); out != "" {
				t.Errorf("%s %v left a container: %s", cli, tc.flags, out)
				_ = dockerCmd("rm", "-f", name).Run()
			}
		}
	}
}

// TestDevices: --device makes a host node available (node and cgroup rule), --device-cgroup-rule only
// lets the container use a node it makes itself.
func TestDevices(t *testing.T) {
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Skip("no /dev/loop-control on this host")
	}
	r := docker(t, "run", "--rm", "--device", "/dev/loop-control:/dev/lc:rw", busybox, "sh", "-c", "ls -l /dev/lc && : < /dev/lc && echo opened")
	if r.code != 0 || !strings.Contains(r.stdout, "10, 237") || !strings.Contains(r.stdout, "opened") {
		t.Fatalf("--device: %s", r)
	}
	// A directory brings the devices below it.
	r = docker(t, "run", "--rm", "--device", "/dev/net", busybox, "ls", "/dev/net")
	if _, err := os.Stat("/dev/net/tun"); err == nil && (r.code != 0 || !strings.Contains(r.stdout, "tun")) {
		t.Fatalf("--device of a directory: %s", r)
	}
	// Without a rule the device cgroup refuses a node made in the container; with one it opens.
	mk := "mknod /tmp/lc c 10 237 && : < /tmp/lc && echo opened"
	r = docker(t, "run", "--rm", busybox, "sh", "-c", mk)
	if r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
		t.Fatalf("device cgroup let an unlisted device open: %s", r)
	}
	r = docker(t, "run", "--rm", "--device-cgroup-rule", "c 10:237 rw", busybox, "sh", "-c", mk)
	if r.code != 0 || !strings.Contains(r.stdout, "opened") {
		t.Fatalf("--device-cgroup-rule: %s", r)
	}
	// mknod itself needs the "m" access.
	r = docker(t, "run", "--rm", "--device-cgroup-rule", "c 10:237 r", busybox, "sh", "-c", mk)
	if r.code != 0 {
		t.Fatalf("mknod of a rule without m should still work (the default rules allow mknod of any char device): %s", r)
	}
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestRuntimeBinaryNotWritable attempts CVE-2019-5736: an image whose program is a script with
// "#!/proc/self/exe" makes the runtime's exec helper run the runtime binary itself as a container
// process; another process in the container catches it, keeps its /proc/<pid>/exe and tries to write
// through it. The binary the container can reach must be read-only and the host's must not change.
func TestRuntimeBinaryNotWritable(t *testing.T) {
	img := probeImage(t)
	bins := []string{env.berthd, filepath.Join(env.tmp, "berth-init")}
	before := map[string]string{}
	for _, b := range bins {
		before[b] = sha256File(t, b)
	}
	name := uniqueName(t)
	mustDocker(t, "run", "-d", "--name", name, "--cap-add", "SYS_PTRACE", img, "/secprobe", "hunt", "120")
	rmOnCleanup(t, name)
	var report string
	for i := 0; i < 60 && report == ""; i++ {
		r := docker(t, "exec", name, "/evil")
		if r.code == 0 {
			t.Fatalf("the runtime binary ran as the script's interpreter and succeeded: %s", r)
		}
		for _, line := range strings.Split(mustDocker(t, "logs", name), "\n") {
			if strings.HasPrefix(line, "{") {
				report = line
			}
		}
	}
	if report == "" {
		t.Skip("the hunter never caught the helper (too fast on this machine); nothing to assert")
	}
	var rep struct {
		Link, Reopen, Direct string
		ReadOnly             bool
	}
	if err := json.Unmarshal([]byte(report), &rep); err != nil {
		t.Fatal(err)
	}
	t.Logf("caught: %s", report)
	if !rep.ReadOnly || rep.Reopen == "WRITTEN" || rep.Direct == "WRITTEN" ||
		strings.HasPrefix(rep.Reopen, "opened") || strings.HasPrefix(rep.Direct, "opened") {
		t.Errorf("the runtime binary is writable from the container: %s", report)
	}
	for _, b := range bins {
		if after := sha256File(t, b); after != before[b] {
			t.Errorf("%s changed", b)
		}
	}
}

// TestNoFdLeaks (CVE-2024-21626 class): a container process, from run or exec, holds only its stdio, and
// starts in the container's working directory, not in one of the host's.
func TestNoFdLeaks(t *testing.T) {
	img := probeImage(t)
	check := func(what string, r result) {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("%s: %s", what, r)
		}
		r.stdout = strings.ReplaceAll(r.stdout, "\r\n", "\n") // a terminal's line ends
		var extra []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			var fd int
			if _, err := fmt.Sscanf(l, "fd %d", &fd); err == nil && fd > 2 {
				extra = append(extra, l)
			}
		}
		if len(extra) > 0 {
			t.Errorf("%s: inherited descriptors: %q", what, extra)
		}
		if !strings.Contains(r.stdout, "cwd /\n") && !strings.Contains(r.stdout, "cwd /work\n") {
			t.Errorf("%s: cwd is not the container's: %s", what, r)
		}
	}
	check("run", docker(t, "run", "--rm", img, "/secprobe", "fds"))
	check("run -t", docker(t, "run", "--rm", "-t", img, "/secprobe", "fds"))
	check("run -w", docker(t, "run", "--rm", "-w", "/work", img, "/secprobe", "fds"))
	name := uniqueName(t)
	mustDocker(t, "run", "-d", "--name", name, img, "sleep", "300")
	rmOnCleanup(t, name)
	check("exec", docker(t, "exec", name, "/secprobe", "fds"))
	check("exec -w", docker(t, "exec", "-w", "/work", name, "/secprobe", "fds"))
	check("exec -u", docker(t, "exec", "-u", "1000", name, "/secprobe", "fds"))

	// CVE-2024-21626: a working directory of /proc/self/fd/N resolves, at the runtime's chdir, through
	// whatever the runtime has open. Either the start fails or the process is inside the container.
	for fd := 3; fd <= 8; fd++ {
		wd := fmt.Sprintf("/proc/self/fd/%d", fd)
		for what, r := range map[string]result{
			"run -w " + wd:  docker(t, "run", "--rm", "-w", wd, img, "/secprobe", "fds"),
			"exec -w " + wd: docker(t, "exec", "-w", wd, name, "/secprobe", "fds"),
		} {
			if r.code == 0 && (strings.Contains(r.stdout, "UNREACHABLE") || !strings.Contains(r.stdout, "cwd /")) {
				t.Errorf("%s: the process runs outside the container: %s", what, r)
			}
		}
	}
}

// TestCopyNeverLeavesTheContainer: docker cp into or out of a container resolves the container's
// symlinks inside its root, never on the host.
func TestCopyNeverLeavesTheContainer(t *testing.T) {
	name := uniqueName(t)
	mustDocker(t, "create", "--name", name, busybox, "true")
	rmOnCleanup(t, name)
	// /x -> / and /up -> ../../.. inside the container.
	dir := t.TempDir()
	if err := os.Symlink("/", filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../..", filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, "cp", filepath.Join(dir, "x"), name+":/x")
	mustDocker(t, "cp", filepath.Join(dir, "up"), name+":/up")
	marker := fmt.Sprintf("berth-escape-%d", os.Getpid())
	src := writeTemp(t, "escaped?")
	hostTmp := filepath.Join("/tmp", marker)
	t.Cleanup(func() { os.Remove(hostTmp) })
	for _, dst := range []string{"/x/tmp/" + marker, "/up/tmp/" + marker} {
		r := docker(t, "cp", src, name+":"+dst)
		if _, err := os.Lstat(hostTmp); err == nil {
			t.Fatalf("docker cp to %s wrote the host's %s (%s)", dst, hostTmp, r)
		}
		if r.code != 0 {
			continue // refusing is fine too
		}
		// It landed in the container's own /tmp.
		out := t.TempDir()
		mustDocker(t, "cp", name+":/tmp/"+marker, out)
		if b, err := os.ReadFile(filepath.Join(out, marker)); err != nil || string(b) != "escaped?" {
			t.Fatalf("copy to %s not found in the container's /tmp: %v", dst, err)
		}
	}
	// Reading through the symlink reads the container's files, not the host's.
	secret := filepath.Join("/tmp", marker+"-secret")
	if err := os.WriteFile(secret, []byte("host only"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(secret) })
	out := t.TempDir()
	r := docker(t, "cp", name+":/x"+secret, out)
	if b, err := os.ReadFile(filepath.Join(out, filepath.Base(secret))); err == nil && string(b) == "host only" {
		t.Fatalf("docker cp read the host's file through the container's symlink: %s", r)
	}
}

// TestLayerExtractionStaysInRoot imports a layer built to escape: "../" names, an absolute name, and a
// symlink to / followed by a file through it. Nothing may land on the host; what is extracted lands
// inside the image.
func TestLayerExtractionStaysInRoot(t *testing.T) {
	marker := fmt.Sprintf("berth-layer-escape-%d", os.Getpid())
	hostPaths := []string{filepath.Join("/tmp", marker+"-dotdot"), filepath.Join("/tmp", marker+"-link"), filepath.Join("/tmp", marker+"-abs")}
	for _, p := range hostPaths {
		p := p
		t.Cleanup(func() { os.Remove(p) })
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	// Enough of busybox to look at the result with.
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Skip("no static busybox on this host:", err)
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, string(bb))
	add(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, "")
	add(&tar.Header{Name: "../../../../../../tmp/" + marker + "-dotdot", Typeflag: tar.TypeReg}, "dotdot")
	add(&tar.Header{Name: "/tmp/" + marker + "-abs", Typeflag: tar.TypeReg}, "abs")
	add(&tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: "/"}, "")
	add(&tar.Header{Name: "lnk/tmp/" + marker + "-link", Typeflag: tar.TypeReg}, "link")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(layer, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	img := uniqueName(t) + ":escape"
	r := docker(t, "import", layer, img)
	t.Cleanup(func() { _ = dockerCmd("rmi", "-f", img).Run() })
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("the layer wrote the host's %s (import: %s)", p, r)
		}
	}
	if r.code != 0 {
		return // refusing the layer is fine too
	}
	out := mustDocker(t, "run", "--rm", img, "/bin/busybox", "ls", "/tmp")
	for _, want := range []string{"-dotdot", "-abs", "-link"} {
		if !strings.Contains(out, marker+want) {
			t.Errorf("%s not inside the image's /tmp: %q", want, out)
		}
	}
}
