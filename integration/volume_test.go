package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/volume"
)

// rmVolumesOnCleanup removes volumes when the test ends (after the containers registered later, since
// cleanups run last-in first-out).
func rmVolumesOnCleanup(t *testing.T, names ...string) {
	t.Cleanup(func() { _ = dockerCmd(append([]string{"volume", "rm", "-f"}, names...)...).Run() })
}

func volumeExists(t *testing.T, name string) bool {
	return docker(t, "volume", "inspect", name).code == 0
}

func inspectVolume(t *testing.T, name string) volume.Volume {
	t.Helper()
	var vs []volume.Volume
	if err := json.Unmarshal([]byte(mustDocker(t, "volume", "inspect", name)), &vs); err != nil || len(vs) != 1 {
		t.Fatalf("volume inspect %s: %v %v", name, vs, err)
	}
	return vs[0]
}

func mountsOf(t *testing.T, ctr string) []container.MountPoint {
	t.Helper()
	var ms []container.MountPoint
	if err := json.Unmarshal([]byte(mustDocker(t, "inspect", "-f", "{{json .Mounts}}", ctr)), &ms); err != nil {
		t.Fatal(err)
	}
	return ms
}

func TestVolumeLifecycle(t *testing.T) {
	vol := uniqueName(t)
	w, r := vol+"-w", vol+"-r"
	rmVolumesOnCleanup(t, vol)
	rmOnCleanup(t, w, r)

	if out := mustDocker(t, "volume", "create", "--label", "team=a", "--label", "tier=db", vol); out != vol {
		t.Fatalf("volume create printed %q", out)
	}
	v := inspectVolume(t, vol)
	if v.Driver != "local" || v.Scope != "local" || v.Labels["team"] != "a" || v.Mountpoint != filepath.Join(env.dataRoot, "volumes", vol, "_data") {
		t.Errorf("inspect: %+v", v)
	}
	if out := mustDocker(t, "volume", "ls", "-q", "--filter", "label=team=a"); out != vol {
		t.Errorf("ls label filter: %q", out)
	}
	if out := mustDocker(t, "volume", "ls", "-q", "--filter", "label=team=b"); out != "" {
		t.Errorf("ls wrong label: %q", out)
	}
	if out := mustDocker(t, "volume", "ls", "-q", "--filter", "name="+vol, "--filter", "dangling=true"); out != vol {
		t.Errorf("ls dangling: %q", out)
	}

	// Write from one container, read from a second running beside it, and from a later one.
	mustDocker(t, "run", "--name", w, "-v", vol+":/data", busybox, "sh", "-c", "echo hello > /data/f")
	mustDocker(t, "run", "-d", "--name", r, "-v", vol+":/data:ro", busybox, "sleep", "60")
	if out := mustDocker(t, "exec", r, "cat", "/data/f"); out != "hello" {
		t.Errorf("second container read %q", out)
	}
	if res := docker(t, "exec", r, "touch", "/data/g"); res.code == 0 || !strings.Contains(res.stderr, "Read-only file system") {
		t.Errorf(":ro not enforced: %s", res)
	}
	if out := mustDocker(t, "run", "--rm", "-v", vol+":/data", busybox, "cat", "/data/f"); out != "hello" {
		t.Errorf("later container read %q", out)
	}
	if out := mustDocker(t, "volume", "ls", "-q", "--filter", "name="+vol, "--filter", "dangling=true"); out != "" {
		t.Errorf("volume in use listed as dangling: %q", out)
	}
	if got := inspectVolume(t, vol).UsageData; got == nil || got.RefCount != 2 {
		t.Errorf("usage: %+v", got)
	}
	ms := mountsOf(t, r)
	if len(ms) != 1 || ms[0].Type != "volume" || ms[0].Name != vol || ms[0].Destination != "/data" || ms[0].RW || ms[0].Driver != "local" {
		t.Errorf("inspect Mounts: %+v", ms)
	}
	if out := mustDocker(t, "ps", "-a", "-q", "--no-trunc", "--filter", "volume="+vol); len(strings.Fields(out)) != 2 {
		t.Errorf("ps --filter volume: %q", out)
	}

	// In use by any container, running or not: refused, and nothing is lost.
	res := docker(t, "volume", "rm", vol)
	if res.code == 0 || !strings.Contains(res.stderr, "volume is in use") {
		t.Fatalf("rm of a volume in use: %s", res)
	}
	mustDocker(t, "rm", "-f", r)
	if res := docker(t, "volume", "rm", vol); res.code == 0 {
		t.Fatalf("rm of a volume used by a stopped container succeeded")
	}
	mustDocker(t, "rm", "-v", w) // -v never removes a named volume
	if !volumeExists(t, vol) {
		t.Fatal("rm -v removed a named volume")
	}
	mustDocker(t, "volume", "rm", vol)
	if volumeExists(t, vol) || fileExists(filepath.Join(env.dataRoot, "volumes", vol)) {
		t.Error("volume still there after rm")
	}
	if res := docker(t, "volume", "rm", vol); res.code == 0 || !strings.Contains(res.stderr, "no such volume") {
		t.Errorf("rm of a missing volume: %s", res)
	}
	mustDocker(t, "volume", "rm", "-f", vol)
}

func TestVolumeBadInput(t *testing.T) {
	host := t.TempDir()
	name := uniqueName(t)
	rmOnCleanup(t, name)
	before := mustDocker(t, "volume", "ls", "-q")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"volume", "create", "bad/name"}, "includes invalid characters for a local volume name"},
		{[]string{"volume", "create", "-o", "bogus=1", name + "-v"}, `invalid option: "bogus"`},
		{[]string{"volume", "create", "-o", "type=tmpfs", name + "-v"}, `missing required option: "device"`},
		{[]string{"run", "--name", name, "-v", "rel/dir:/data", busybox, "true"}, "includes invalid characters for a local volume name"},
		{[]string{"run", "--name", name, "-v", host + ":data", busybox, "true"}, "mount path must be absolute"},
		{[]string{"run", "--name", name, "-v", name + "-a:/data", "-v", host + ":/data", busybox, "true"}, "Duplicate mount point: /data"},
		{[]string{"run", "--name", name, "-v", name + "-b:/data", "--mount", "type=bind,src=" + host + ",dst=/data", busybox, "true"}, "Duplicate mount point: /data"},
		{[]string{"run", "--name", name, "-v", host + ":/data:bogus", busybox, "true"}, "invalid mode: bogus"},
		{[]string{"run", "--name", name, "--mount", "type=bind,src=" + host + "/nope,dst=/data", busybox, "true"}, "bind source path does not exist"},
		{[]string{"run", "--name", name, "--tmpfs", "/t:bogus", busybox, "true"}, "invalid tmpfs option"},
	}
	for _, tc := range cases {
		res := docker(t, tc.args...)
		if res.code == 0 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v: want %q, got %s", tc.args, tc.want, res)
		}
	}
	// Nothing half-created: no container, no volume.
	if docker(t, "inspect", name).code == 0 {
		t.Error("a failed run left a container")
	}
	if after := mustDocker(t, "volume", "ls", "-q"); after != before {
		t.Errorf("failed commands left volumes: before %q after %q", before, after)
	}
}

func TestBindMounts(t *testing.T) {
	host := t.TempDir()
	name := uniqueName(t)
	rmOnCleanup(t, name)
	if err := os.WriteFile(filepath.Join(host, "in"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(host, "made", "by", "run")
	mustDocker(t, "run", "--name", name, "-v", host+":/h", "-v", missing+":/m", busybox, "sh", "-c", "cat /h/in > /h/out; echo x > /m/x")
	if readFile(t, filepath.Join(host, "out")) != "from host" {
		t.Error("bind mount write did not reach the host")
	}
	if readFile(t, filepath.Join(missing, "x")) != "x\n" {
		t.Error("missing host directory was not created and mounted")
	}
	ms := mountsOf(t, name) // sorted by destination: /h, /m
	if len(ms) != 2 || ms[0].Type != "bind" || ms[0].Source != host || ms[0].Destination != "/h" || !ms[0].RW || ms[0].Propagation != "rprivate" ||
		ms[1].Source != missing || ms[1].Destination != "/m" {
		t.Errorf("inspect Mounts: %+v", ms)
	}
	for _, args := range [][]string{
		{"-v", host + ":/h:ro"},
		{"--mount", "type=bind,source=" + host + ",target=/h,readonly"},
		{"--mount", "type=bind,source=" + host + ",target=/h,readonly,bind-propagation=rslave"},
	} {
		cmd := append(append([]string{"run", "--rm"}, args...), busybox, "sh", "-c", "cat /h/in && touch /h/nope")
		res := docker(t, cmd...)
		if res.code == 0 || !strings.Contains(res.stdout, "from host") || !strings.Contains(res.stderr, "Read-only file system") {
			t.Errorf("%v: %s", args, res)
		}
	}
	if fileExists(filepath.Join(host, "nope")) {
		t.Error("write through a read-only bind reached the host")
	}
	// --read-only makes the root read-only, not the volumes.
	res := docker(t, "run", "--rm", "--read-only", "-v", host+":/h", busybox, "sh", "-c", "touch /h/rw && touch /root-file")
	if res.code == 0 || !strings.Contains(res.stderr, "Read-only file system") || !fileExists(filepath.Join(host, "rw")) {
		t.Errorf("--read-only with a volume: %s", res)
	}
}

func TestTmpfsMounts(t *testing.T) {
	name := uniqueName(t)
	vol := name + "-tv"
	rmVolumesOnCleanup(t, vol)
	rmOnCleanup(t, name, name+"-2")
	mustDocker(t, "run", "-d", "--name", name, "--tmpfs", "/t:size=1m,mode=1777",
		"--mount", "type=tmpfs,target=/u,tmpfs-size=2097152,tmpfs-mode=0700", busybox, "sleep", "60")
	out := mustDocker(t, "exec", name, "sh", "-c", "grep -E ' /(t|u) ' /proc/mounts; stat -c '%a' /t /u; echo x > /t/f; cat /t/f")
	for _, want := range []string{"tmpfs /t tmpfs", "size=1024k", "tmpfs /u tmpfs", "size=2048k", "nosuid", "1777", "700", "x"} {
		if !strings.Contains(out, want) {
			t.Errorf("tmpfs mounts: no %q in\n%s", want, out)
		}
	}
	ms := mountsOf(t, name)
	if len(ms) != 1 || ms[0].Type != "tmpfs" || ms[0].Destination != "/u" {
		t.Errorf("inspect Mounts: %+v", ms)
	}
	mustDocker(t, "stop", "-t", "1", name)
	mustDocker(t, "start", name)
	if out := mustDocker(t, "exec", name, "ls", "/t"); out != "" {
		t.Errorf("tmpfs content survived a restart: %q", out)
	}

	// A local volume with a tmpfs device lives in memory while containers use it.
	mustDocker(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m", vol)
	mustDocker(t, "run", "-d", "--name", name+"-2", "-v", vol+":/v", busybox, "sleep", "60")
	out = mustDocker(t, "exec", name+"-2", "sh", "-c", "grep ' /v ' /proc/mounts; echo keep > /v/f")
	if !strings.Contains(out, "tmpfs /v tmpfs") || !strings.Contains(out, "size=4096k") {
		t.Errorf("tmpfs volume: %s", out)
	}
	mustDocker(t, "stop", "-t", "1", name+"-2")
	if out := mustDocker(t, "run", "--rm", "-v", vol+":/v", busybox, "ls", "/v"); out != "" {
		t.Errorf("tmpfs volume content survived its last container: %q", out)
	}
}

// copyUpImage commits an image with content at /data (odd ownership and modes) and VOLUME /data.
func copyUpImage(t *testing.T) string {
	t.Helper()
	name := uniqueName(t) + "-src"
	img := strings.ToLower(uniqueName(t)) + ":img"
	rmOnCleanup(t, name)
	mustDocker(t, "run", "--name", name, busybox, "sh", "-c",
		"mkdir -p /data/sub && echo seed > /data/f && chown 1234:5678 /data/f && chmod 640 /data/f && ln -s f /data/link && chown 42:43 /data && chmod 750 /data && chmod 4755 /data/sub")
	mustDocker(t, "commit", "--change", `VOLUME ["/data"]`, name, img)
	t.Cleanup(func() { _ = dockerCmd("rmi", "-f", img).Run() })
	return img
}

func TestVolumeCopyUp(t *testing.T) {
	img := copyUpImage(t)
	vol := uniqueName(t)
	rmVolumesOnCleanup(t, vol, vol+"-nocopy", vol+"-nocopy2")
	const probe = "stat -c '%n %u:%g %a' /data /data/f /data/sub; readlink /data/link; cat /data/f"
	want := "/data 42:43 750\n/data/f 1234:5678 640\n/data/sub 0:0 4755\nf\nseed"
	// Anonymous (the image's VOLUME), named, and --mount volume: all filled from the image.
	if out := mustDocker(t, "run", "--rm", img, "sh", "-c", probe); out != want {
		t.Errorf("anonymous volume:\n%s\nwant\n%s", out, want)
	}
	if out := mustDocker(t, "run", "--rm", "-v", vol+":/data", img, "sh", "-c", probe+"; echo more > /data/g; rm /data/f"); out != want {
		t.Errorf("named volume:\n%s\nwant\n%s", out, want)
	}
	// Not empty any more: no second copy, the volume's own content wins.
	if out := mustDocker(t, "run", "--rm", "-v", vol+":/data", img, "ls", "/data"); out != "g\nlink\nsub" {
		t.Errorf("second use of the volume: %q", out)
	}
	if out := mustDocker(t, "run", "--rm", "-v", vol+"-nocopy:/data:nocopy", img, "ls", "-A", "/data"); out != "" {
		t.Errorf("nocopy: %q", out)
	}
	if out := mustDocker(t, "run", "--rm", "--mount", "type=volume,src="+vol+"-nocopy2,dst=/data,volume-nocopy", img, "ls", "-A", "/data"); out != "" {
		t.Errorf("volume-nocopy: %q", out)
	}
}

func TestAnonymousVolumesAndPrune(t *testing.T) {
	img := copyUpImage(t)
	name := uniqueName(t)
	named := name + "-named"
	rmVolumesOnCleanup(t, named, name+"-unused")
	rmOnCleanup(t, name, name+"-2")
	anonOf := func(ctr string) string {
		t.Helper()
		for _, m := range mountsOf(t, ctr) {
			if m.Destination == "/data" {
				return m.Name
			}
		}
		t.Fatalf("%s has no /data mount", ctr)
		return ""
	}
	// --rm removes the anonymous volume, never the named one.
	mustDocker(t, "run", "--name", name, "--rm", "-d", "-v", named+":/n", img, "sleep", "0.2")
	waitFor(t, 10e9, func() bool { return docker(t, "inspect", name).code != 0 })
	if !volumeExists(t, named) {
		t.Error("--rm removed a named volume")
	}
	// Without --rm or -v, removal keeps the anonymous volume; rm -v removes it.
	mustDocker(t, "create", "--name", name, img, "true")
	anon := anonOf(name)
	if v := inspectVolume(t, anon); v.Labels["com.docker.volume.anonymous"] != "" || len(anon) != 64 {
		t.Errorf("anonymous volume: %+v", v)
	}
	mustDocker(t, "rm", name)
	if !volumeExists(t, anon) {
		t.Fatal("rm without -v removed the anonymous volume")
	}
	mustDocker(t, "create", "--name", name+"-2", img, "true")
	anon2 := anonOf(name + "-2")
	mustDocker(t, "rm", "-v", name+"-2")
	if volumeExists(t, anon2) {
		t.Error("rm -v kept the anonymous volume")
	}

	// Prune: only unused volumes; anonymous ones by default, named ones too with --all.
	mustDocker(t, "volume", "create", name+"-unused")
	mustDocker(t, "run", "-d", "--name", name, "-v", named+":/n", busybox, "sleep", "60")
	out := mustDocker(t, "volume", "prune", "-f")
	if !strings.Contains(out, anon) || strings.Contains(out, named) || strings.Contains(out, name+"-unused") || !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("prune: %s", out)
	}
	out = mustDocker(t, "volume", "prune", "-f", "--all", "--filter", "label!=keep")
	if !strings.Contains(out, name+"-unused") || strings.Contains(out, named) {
		t.Errorf("prune --all: %s", out)
	}
	if !volumeExists(t, named) || volumeExists(t, name+"-unused") || volumeExists(t, anon) {
		t.Error("prune removed the wrong volumes")
	}
}

// TestBackupRestore is the README's recipe: back up a container's volume with --volumes-from and a bind
// mount of the current directory, then restore it into a fresh container.
func TestBackupRestore(t *testing.T) {
	dir := t.TempDir()
	db, db2 := uniqueName(t)+"-db", uniqueName(t)+"-db2"
	rmOnCleanup(t, db, db2)
	t.Cleanup(func() {
		for _, c := range []string{db, db2} {
			_ = dockerCmd("rm", "-f", "-v", c).Run()
		}
	})
	mustDocker(t, "run", "--name", db, "-v", "/dbdata", busybox, "sh", "-c", "echo precious > /dbdata/row1 && mkdir /dbdata/t && echo 2 > /dbdata/t/row2")
	backup := func(args ...string) result {
		cmd := dockerCmd(args...)
		cmd.Dir = dir
		return runCmd(t, cmd, "")
	}
	if res := backup("run", "--rm", "--volumes-from", db, "-v", dir+":/backup", busybox, "tar", "cf", "/backup/backup.tar", "/dbdata"); res.code != 0 {
		t.Fatalf("backup: %s", res)
	}
	if !fileExists(filepath.Join(dir, "backup.tar")) {
		t.Fatal("no backup.tar")
	}
	mustDocker(t, "run", "--name", db2, "-v", "/dbdata", busybox, "true")
	if res := backup("run", "--rm", "--volumes-from", db2, "-v", dir+":/backup", busybox, "sh", "-c", "cd /dbdata && tar xf /backup/backup.tar --strip 1"); res.code != 0 {
		t.Fatalf("restore: %s", res)
	}
	if out := mustDocker(t, "run", "--rm", "--volumes-from", db2, busybox, "cat", "/dbdata/row1", "/dbdata/t/row2"); out != "precious\n2" {
		t.Errorf("restored data: %q", out)
	}
	// --volumes-from with :ro
	res := docker(t, "run", "--rm", "--volumes-from", db2+":ro", busybox, "sh", "-c", "cat /dbdata/row1; touch /dbdata/x")
	if res.code == 0 || !strings.Contains(res.stdout, "precious") || !strings.Contains(res.stderr, "Read-only file system") {
		t.Errorf("--volumes-from :ro: %s", res)
	}
}

// TestVolumesSurviveDaemonKill kills berthd with SIGKILL: every volume, its data and its users come back.
func TestVolumesSurviveDaemonKill(t *testing.T) {
	vol := uniqueName(t)
	name := vol + "-c"
	rmVolumesOnCleanup(t, vol)
	rmOnCleanup(t, name)
	mustDocker(t, "volume", "create", "--label", "k=v", vol)
	mustDocker(t, "run", "--name", name, "-v", vol+":/data", busybox, "sh", "-c", "dd if=/dev/zero of=/data/blob bs=1k count=64 2>/dev/null; echo ok > /data/f")
	stopDaemon(syscall.SIGKILL)
	if err := startDaemon(); err != nil {
		t.Fatal(err)
	}
	if v := inspectVolume(t, vol); v.Labels["k"] != "v" {
		t.Errorf("labels after restart: %+v", v)
	}
	if out := mustDocker(t, "run", "--rm", "-v", vol+":/data", busybox, "sh", "-c", "cat /data/f; wc -c < /data/blob"); out != "ok\n65536" {
		t.Errorf("data after restart: %q", out)
	}
	// The stopped container still counts as a user after the restart.
	if res := docker(t, "volume", "rm", vol); res.code == 0 || !strings.Contains(res.stderr, "volume is in use") {
		t.Errorf("rm after restart: %s", res)
	}
}

func TestBerthVolumeCommands(t *testing.T) {
	vol := uniqueName(t)
	rmVolumesOnCleanup(t, vol, vol+"-2")
	mustBerth := func(args ...string) string {
		t.Helper()
		r := berth(t, args...)
		if r.code != 0 {
			t.Fatalf("berth %v: %s", args, r)
		}
		return strings.TrimSpace(r.stdout)
	}
	if out := mustBerth("volume", "create", "--label", "x=1", vol); out != vol {
		t.Fatalf("create: %q", out)
	}
	out := mustBerth("volume", "ls", "--filter", "label=x=1")
	if lines := strings.Split(out, "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "DRIVER") || !strings.Contains(lines[1], vol) {
		t.Errorf("ls: %q", out)
	}
	if out := mustBerth("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels.x}}", vol); out != vol+" local 1" {
		t.Errorf("inspect: %q", out)
	}
	if out := mustBerth("inspect", "-f", "{{.Mountpoint}}", vol); !strings.HasSuffix(out, "/volumes/"+vol+"/_data") {
		t.Errorf("generic inspect: %q", out)
	}
	if out := mustBerth("run", "--rm", "--mount", "type=volume,src="+vol+",dst=/v", "-v", vol+"-2:/w", busybox, "sh", "-c", "echo a > /v/a; echo b > /w/b; cat /v/a /w/b"); out != "a\nb" {
		t.Errorf("run --mount: %q", out)
	}
	if r := berth(t, "run", "--rm", "--mount", "type=bind,src=/tmp,dst=/t,bogus=1", busybox, "true"); r.code != 125 || !strings.Contains(r.stderr, "unexpected key 'bogus'") {
		t.Errorf("bad --mount: %s", r)
	}
	if out := mustBerth("volume", "rm", vol, vol+"-2"); out != vol+"\n"+vol+"-2" {
		t.Errorf("rm: %q", out)
	}
	if r := berth(t, "volume", "inspect", vol); r.code == 0 || !strings.Contains(r.stderr, "No such volume: "+vol) {
		t.Errorf("inspect removed: %s", r)
	}
	if out := mustBerth("volume", "prune", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("prune: %q", out)
	}
}

// TestCpThroughVolumes copies in and out of volumes and binds, as docker cp does: the data the container
// sees there, not the directory underneath in its own filesystem.
func TestCpThroughVolumes(t *testing.T) {
	host, out := t.TempDir(), t.TempDir()
	name := uniqueName(t)
	vol := name + "-v"
	rmVolumesOnCleanup(t, vol)
	rmOnCleanup(t, name, name+"-ro")
	if err := os.WriteFile(filepath.Join(host, "h"), []byte("host file"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, "run", "-d", "--name", name, "--read-only", "-v", vol+":/data", "-v", host+":/h", busybox, "sleep", "60")
	mustDocker(t, "exec", name, "sh", "-c", "echo in-volume > /data/f")
	mustDocker(t, "cp", name+":/data/f", filepath.Join(out, "f"))
	if got := readFile(t, filepath.Join(out, "f")); got != "in-volume\n" {
		t.Errorf("cp out of a volume: %q", got)
	}
	mustDocker(t, "cp", name+":/h/h", filepath.Join(out, "h"))
	if got := readFile(t, filepath.Join(out, "h")); got != "host file" {
		t.Errorf("cp out of a bind: %q", got)
	}
	// Into a volume of a container with a read-only root: allowed, the volume is writable.
	mustDocker(t, "cp", filepath.Join(out, "h"), name+":/data/copied")
	if got := mustDocker(t, "exec", name, "cat", "/data/copied"); got != "host file" {
		t.Errorf("cp into a volume: %q", got)
	}
	mustDocker(t, "cp", out+"/.", name+":/data/dir")
	if got := mustDocker(t, "exec", name, "ls", "/data/dir"); got != "f\nh" {
		t.Errorf("cp of a directory into a volume: %q", got)
	}
	if res := docker(t, "cp", filepath.Join(out, "h"), name+":/etc/x"); res.code == 0 || !strings.Contains(res.stderr, "read-only") {
		t.Errorf("cp into a read-only root: %s", res)
	}
	mustDocker(t, "create", "--name", name+"-ro", "-v", vol+":/data:ro", busybox, "true")
	if res := docker(t, "cp", filepath.Join(out, "h"), name+"-ro:/data/"); res.code == 0 || !strings.Contains(res.stderr, "mounted volume is marked read-only") {
		t.Errorf("cp into a :ro volume: %s", res)
	}
	if got := mustDocker(t, "cp", name+"-ro:/data/f", "-"); !strings.Contains(got, "in-volume") {
		t.Errorf("cp out of a stopped container's volume: %q", got)
	}
}

// TestLocalDriverBindAndFileBinds: a local volume that binds an existing host directory (type=none,
// o=bind), and a bind mount of a single file.
func TestLocalDriverBindAndFileBinds(t *testing.T) {
	dir := t.TempDir()
	name := uniqueName(t)
	vol := name + "-v"
	rmVolumesOnCleanup(t, vol)
	rmOnCleanup(t, name)
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("key=value\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+dir, vol)
	out := mustDocker(t, "run", "--name", name, "-v", vol+":/v", "-v", conf+":/etc/app.conf:ro", busybox,
		"sh", "-c", "cat /etc/app.conf; echo from-ctr > /v/written; ls /v")
	if out != "key=value\napp.conf\nwritten" {
		t.Errorf("output: %q", out)
	}
	if got := readFile(t, filepath.Join(dir, "written")); got != "from-ctr\n" {
		t.Errorf("write through the bind volume: %q", got)
	}
	// Unmounted once its last container stopped: the host directory is untouched by the volume's removal.
	mustDocker(t, "rm", name)
	mustDocker(t, "volume", "rm", vol)
	if !fileExists(filepath.Join(dir, "written")) || !fileExists(conf) {
		t.Error("removing a bind volume deleted the host directory's content")
	}
	if mounts, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mounts), "/volumes/"+vol+"/") {
		t.Error("the volume's mount is left behind")
	}
}
