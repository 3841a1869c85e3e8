package spec

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// fakeRootfs writes just the files user resolution reads.
func fakeRootfs(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n# comment\nberth:x:1000:1000:berth:/home/berth:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nberth:x:1000:\nextra:x:2000:berth\nother:x:3000:root,berth\nnogroup:x:65534:\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestResolveUser(t *testing.T) {
	root := fakeRootfs(t)
	cases := []struct {
		user     string
		groupAdd []string
		uid, gid uint32
		groups   []uint32
		home     string
		err      string
	}{
		{user: "", uid: 0, gid: 0, groups: []uint32{0, 3000}, home: "/root"},
		{user: "berth", uid: 1000, gid: 1000, groups: []uint32{1000, 2000, 3000}, home: "/home/berth"},
		{user: "1000", uid: 1000, gid: 1000, groups: []uint32{1000, 2000, 3000}, home: "/home/berth"},
		{user: "berth:extra", uid: 1000, gid: 2000, groups: []uint32{2000}, home: "/home/berth"},
		{user: "1234:5678", uid: 1234, gid: 5678, groups: []uint32{5678}, home: "/"},
		{user: "4321", uid: 4321, gid: 0, groups: []uint32{0}, home: "/"},
		{user: "nobody", groupAdd: []string{"extra", "42"}, uid: 65534, gid: 65534, groups: []uint32{65534, 2000, 42}, home: "/nonexistent"},
		{user: "xyz", err: "unable to find user xyz: no matching entries in passwd file"},
		{user: "berth:nope", err: "unable to find group nope: no matching entries in group file"},
		{user: "berth", groupAdd: []string{"nope"}, err: "unable to find group nope: no matching entries in group file"},
	}
	for _, tc := range cases {
		uid, gid, groups, home, err := ResolveUser(root, tc.user, tc.groupAdd)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errdefs.IsInvalidParameter(err) {
				t.Errorf("%q: err %v, want %q", tc.user, err, tc.err)
			}
			continue
		}
		if err != nil || uid != tc.uid || gid != tc.gid || !slices.Equal(groups, tc.groups) || home != tc.home {
			t.Errorf("%q: got %d %d %v %q %v, want %d %d %v %q", tc.user, uid, gid, groups, home, err, tc.uid, tc.gid, tc.groups, tc.home)
		}
	}
}

// TestResolveUserSymlinkStaysInRootfs: an image whose /etc/passwd links to an absolute path must be
// read from inside the rootfs, never from the host's file of that name.
func TestResolveUserSymlinkStaysInRootfs(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data/pw"), []byte("app:x:77:88::/app:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/data/pw", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../etc/shadow", filepath.Join(root, "etc/group")); err != nil {
		t.Fatal(err)
	}
	uid, gid, _, home, err := ResolveUser(root, "app", nil)
	if err != nil || uid != 77 || gid != 88 || home != "/app" {
		t.Fatalf("got %d %d %q %v", uid, gid, home, err)
	}
	// The host has a "root" user; through the rootfs there is none.
	if _, _, _, _, err := ResolveUser(root, "root", nil); err == nil {
		t.Fatal("resolved root through a link out of the rootfs")
	}
}

func TestJoinInRoot(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "a/b"), 0o755))
	must(os.Symlink("/a", filepath.Join(root, "abs")))
	must(os.Symlink("../../../..", filepath.Join(root, "a/up")))
	must(os.Symlink("loop", filepath.Join(root, "loop")))
	for in, want := range map[string]string{
		"/a/b": "/a/b", "abs/b": "/a/b", "/a/up/etc": "/etc", "/../../x": "/x", "/abs/../a": "/a", "/new/file": "/new/file",
	} {
		got, err := JoinInRoot(root, in)
		if err != nil || got != filepath.Join(root, want) {
			t.Errorf("%q: got %q %v, want %q", in, got, err, filepath.Join(root, want))
		}
	}
	if _, err := JoinInRoot(root, "/loop/x"); err == nil {
		t.Error("symlink loop resolved")
	}
}

func TestGenerateDefaults(t *testing.T) {
	root := fakeRootfs(t)
	s, err := Generate(Options{ID: "c1", Rootfs: root, Args: []string{"sh"}, Env: []string{"FOO=bar"}, Hostname: "h", CgroupsPath: "/berth/c1"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != specs.Version || s.Root.Path != root || s.Hostname != "h" || s.Process.Cwd != "/" || s.Linux.CgroupsPath != "/berth/c1" {
		t.Errorf("basic fields: %+v", s)
	}
	if !slices.Equal(s.Process.Env, []string{"FOO=bar", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}) {
		t.Errorf("env %v", s.Process.Env)
	}
	caps := s.Process.Capabilities
	if len(caps.Bounding) != len(DefaultCapabilities) || !slices.Equal(caps.Bounding, caps.Effective) || len(caps.Inheritable) != 0 || len(caps.Ambient) != 0 {
		t.Errorf("caps %+v", caps)
	}
	for _, c := range DefaultCapabilities {
		if !slices.Contains(caps.Bounding, c) {
			t.Errorf("missing %s", c)
		}
	}
	if !slices.Equal(s.Linux.MaskedPaths, DefaultMaskedPaths) || !slices.Equal(s.Linux.ReadonlyPaths, DefaultReadonlyPaths) {
		t.Errorf("masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
		if m.Destination == "/dev/shm" && !slices.Contains(m.Options, "size=67108864") {
			t.Errorf("shm options %v", m.Options)
		}
		if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && !slices.Contains(m.Options, "ro") {
			t.Errorf("%s not ro: %v", m.Destination, m.Options)
		}
	}
	for _, d := range []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"} {
		if !slices.Contains(dests, d) {
			t.Errorf("no %s mount", d)
		}
	}
	var ns []string
	for _, n := range s.Linux.Namespaces {
		ns = append(ns, string(n.Type))
	}
	if strings.Join(ns, ",") != "pid,mount,uts,ipc,network,cgroup" {
		t.Errorf("namespaces %v", ns)
	}
	var devs []string
	for _, d := range s.Linux.Devices {
		devs = append(devs, d.Path)
	}
	if strings.Join(devs, ",") != "/dev/null,/dev/zero,/dev/full,/dev/random,/dev/urandom,/dev/tty" {
		t.Errorf("devices %v", devs)
	}
	var host unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &host)
	if len(s.Process.Rlimits) != 1 || s.Process.Rlimits[0].Type != "RLIMIT_NOFILE" || s.Process.Rlimits[0].Hard > host.Max {
		t.Errorf("rlimits %+v (host hard %d)", s.Process.Rlimits, host.Max)
	}
}

func TestGenerateOptions(t *testing.T) {
	root := fakeRootfs(t)
	pids := int64(100)
	s, err := Generate(Options{
		Rootfs: root, Args: []string{"sh"}, Env: []string{"HOME=/custom"}, User: "berth", Cwd: "/work",
		CapAdd: []string{"net_admin", "CAP_SYS_TIME"}, CapDrop: []string{"mknod", "CAP_NET_RAW"},
		Ulimits:   []Ulimit{{Name: "nofile", Soft: 100, Hard: 200}, {Name: "nproc", Soft: 10, Hard: 20}},
		Resources: Resources{Memory: 64 << 20, NanoCPUs: 1e9 / 2, CPUShares: 512, CpusetCpus: "0", PidsLimit: &pids, BlkioWeight: 300},
		NetNSPath: "/run/netns/x", ShmSize: 1 << 20, ReadonlyRootfs: true,
		Mounts: []specs.Mount{{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"size=5"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	caps := s.Process.Capabilities.Bounding
	for _, c := range []string{"CAP_NET_ADMIN", "CAP_SYS_TIME"} {
		if !slices.Contains(caps, c) {
			t.Errorf("missing %s", c)
		}
	}
	for _, c := range []string{"CAP_MKNOD", "CAP_NET_RAW"} {
		if slices.Contains(caps, c) {
			t.Errorf("kept %s", c)
		}
	}
	if s.Process.User.UID != 1000 || s.Process.Cwd != "/work" || !slices.Contains(s.Process.Env, "HOME=/custom") || !s.Root.Readonly {
		t.Errorf("process %+v", s.Process)
	}
	if len(s.Process.Rlimits) != 2 || s.Process.Rlimits[0].Hard != 200 {
		t.Errorf("rlimits %+v", s.Process.Rlimits)
	}
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 || *r.CPU.Quota != 50000 || *r.CPU.Period != 100000 ||
		*r.CPU.Shares != 512 || r.CPU.Cpus != "0" || r.Pids.Limit != 100 || *r.BlockIO.Weight != 300 {
		t.Errorf("resources %+v", r)
	}
	shm := 0
	for _, m := range s.Mounts {
		if m.Destination == "/dev/shm" {
			shm++
			if !slices.Equal(m.Options, []string{"size=5"}) {
				t.Errorf("user shm mount lost: %v", m.Options)
			}
		}
	}
	if shm != 1 {
		t.Errorf("%d /dev/shm mounts", shm)
	}
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace && n.Path != "/run/netns/x" {
			t.Errorf("netns %+v", n)
		}
	}
}

func TestGenerateCapsAllAndErrors(t *testing.T) {
	root := fakeRootfs(t)
	s, err := Generate(Options{Rootfs: root, Args: []string{"sh"}, CapDrop: []string{"ALL"}, CapAdd: []string{"chown"}})
	if err != nil || !slices.Equal(s.Process.Capabilities.Bounding, []string{"CAP_CHOWN"}) {
		t.Errorf("drop all: %v %v", s.Process.Capabilities, err)
	}
	host, err := HostCapabilities()
	if err != nil {
		t.Fatal(err)
	}
	s, err = Generate(Options{Rootfs: root, Args: []string{"sh"}, CapAdd: []string{"ALL"}, CapDrop: []string{"kill"}})
	if err != nil || len(s.Process.Capabilities.Bounding) != len(host)-1 || slices.Contains(s.Process.Capabilities.Bounding, "CAP_KILL") {
		t.Errorf("add all: %v %v", s.Process.Capabilities.Bounding, err)
	}
	bad := []struct {
		o    Options
		want string
	}{
		{Options{CapAdd: []string{"bogus"}}, `unknown capability: "CAP_BOGUS"`},
		{Options{User: "ghost"}, "unable to find user ghost: no matching entries in passwd file"},
		{Options{Resources: Resources{Memory: 1 << 20}}, "Minimum memory limit allowed is 6MB"},
		{Options{Resources: Resources{Memory: 64 << 20, MemorySwap: 32 << 20}}, "Minimum memoryswap limit should be larger than memory limit, see usage"},
		{Options{Resources: Resources{NanoCPUs: 1000e9}}, "Range of CPUs is from 0.01 to"},
		{Options{Ulimits: []Ulimit{{Name: "bogus"}}}, "invalid ulimit type: bogus"},
		{Options{Cwd: "rel"}, "the working directory 'rel' is invalid"},
	}
	for _, b := range bad {
		b.o.Rootfs, b.o.Args = root, []string{"sh"}
		_, err := Generate(b.o)
		if err == nil || !strings.Contains(err.Error(), b.want) || !errdefs.IsInvalidParameter(err) {
			t.Errorf("%+v: err %v, want %q", b.o, err, b.want)
		}
	}
}

func TestGeneratePrivileged(t *testing.T) {
	s, err := Generate(Options{Rootfs: fakeRootfs(t), Args: []string{"sh"}, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := HostCapabilities()
	if !slices.Equal(s.Process.Capabilities.Bounding, host) {
		t.Errorf("privileged caps %v, host %v", s.Process.Capabilities.Bounding, host)
	}
	if runtime.GOOS == "linux" && slices.Contains(host, "CAP_SYS_RESOURCE") {
		t.Log("host has CAP_SYS_RESOURCE")
	}
	if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged has masked/readonly paths")
	}
	for _, m := range s.Mounts {
		if m.Destination == "/sys" && !slices.Contains(m.Options, "rw") {
			t.Errorf("/sys not rw: %v", m.Options)
		}
	}
	found := false
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/null" {
			found = true
		}
	}
	if !found {
		t.Errorf("host devices missing: %d", len(s.Linux.Devices))
	}
}

func TestWriteReadBundle(t *testing.T) {
	dir := t.TempDir()
	s, err := Generate(Options{Rootfs: fakeRootfs(t), Args: []string{"echo", "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(dir, s); err != nil {
		t.Fatal(err)
	}
	got, err := ReadBundle(dir)
	if err != nil || !slices.Equal(got.Process.Args, []string{"echo", "hi"}) || len(got.Mounts) != len(s.Mounts) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("bundle holds %d files", len(ents))
	}
}
