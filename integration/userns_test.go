package integration

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// usernsDaemon is a second berthd started with --userns-remap on roots of its own.
type usernsDaemon struct {
	sock, bridge string
	cmd          *exec.Cmd
}

func (d *usernsDaemon) docker(t testing.TB, args ...string) result {
	t.Helper()
	cmd := exec.Command(dockerBin(), append([]string{"-H", "unix://" + d.sock}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(env.tmp, "docker-config"), "DOCKER_BUILDKIT=0")
	return runCmd(t, cmd, "")
}

func (d *usernsDaemon) must(t testing.TB, args ...string) string {
	t.Helper()
	r := d.docker(t, args...)
	if r.code != 0 {
		t.Fatalf("docker %s: %s", strings.Join(args, " "), r)
	}
	return strings.TrimSpace(r.stdout)
}

// startUsernsDaemon starts berthd with --userns-remap=default. The account it makes (berthremap, with
// its /etc/subuid and /etc/subgid lines) is removed afterwards unless it was there before.
func startUsernsDaemon(t *testing.T, mode string) *usernsDaemon {
	t.Helper()
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		t.Skip("no user namespaces")
	}
	if _, err := user.Lookup("berthremap"); err != nil {
		t.Cleanup(removeRemapUser)
	}
	// The remapped root mounts what it needs from the daemon's roots by path: every directory above them
	// must be searchable by others, which a private temporary directory is not.
	if err := os.Chmod(env.tmp, 0o711); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(env.tmp, "userns-"+mode)
	d := &usernsDaemon{sock: filepath.Join(root, "exec", "berth.sock"), bridge: fmt.Sprintf("berthus%d", os.Getpid()%1000000)}
	lf, err := os.Create(filepath.Join(env.tmp, "berthd-userns-"+mode+".log"))
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(env.berthd, "--data-root", filepath.Join(root, "data"), "--exec-root", filepath.Join(root, "exec"),
		"--bridge", d.bridge, "--log-level", "debug", "--userns-remap", "default")
	d.cmd.Stdout, d.cmd.Stderr = lf, lf
	if mode == "chown" {
		d.cmd.Env = append(os.Environ(), "BERTH_USERNS_IDMAP=0")
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out := d.docker(t, "ps", "-aq").stdout; strings.TrimSpace(out) != "" {
			d.docker(t, append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
		// The monitor of this daemon, and anything mounted under its roots.
		killProcessesUnder(root)
		unmountUnder(root)
		_ = exec.Command("ip", "link", "del", d.bridge).Run()
		_ = exec.Command("nft", "delete", "table", "ip", "berth-"+d.bridge).Run()
		lf.Close()
		if t.Failed() {
			log, _ := os.ReadFile(lf.Name())
			t.Logf("berthd --userns-remap log:\n%s", tail(string(log), 3000))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for d.docker(t, "version").code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("berthd --userns-remap did not answer within 20s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.must(t, "import", filepath.Join(env.tmp, "busybox.tar"), busybox)
	return d
}

func removeRemapUser() {
	_ = exec.Command("userdel", "berthremap").Run()
	_ = exec.Command("groupdel", "berthremap").Run()
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var keep []string
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			if !strings.HasPrefix(l, "berthremap:") {
				keep = append(keep, l)
			}
		}
		out := strings.Join(keep, "\n")
		if out != "" {
			out += "\n"
		}
		_ = os.WriteFile(f, []byte(out), 0o644)
	}
}

// remapRoot reads the host uid and gid berthremap's range starts at.
func remapRoot(t *testing.T) (int, int) {
	t.Helper()
	first := func(file string) int {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if p := strings.Split(l, ":"); len(p) == 3 && p[0] == "berthremap" {
				n, _ := strconv.Atoi(p[1])
				return n
			}
		}
		t.Fatalf("no berthremap range in %s", file)
		return 0
	}
	return first("/etc/subuid"), first("/etc/subgid")
}

func statusIDs(t *testing.T, pid string) (uid, gid string) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && f[0] == "Uid:" {
			uid = f[1]
		}
		if len(f) > 1 && f[0] == "Gid:" {
			gid = f[1]
		}
	}
	return uid, gid
}

// TestUsernsRemap: with --userns-remap, a container's root is root inside and an unprivileged uid
// outside; the image's files look as they do without remapping, what the container writes comes back
// with the container's ids through commit, cp, export and builds, and the options a remapped container
// cannot have are refused. Both ways are run: idmapped mounts (nothing on disk changes owner) and the
// chowned copies used where the kernel has no idmapped mounts (forced with BERTH_USERNS_IDMAP=0).
func TestUsernsRemap(t *testing.T) {
	for _, mode := range []string{"idmapped", "chown"} {
		t.Run(mode, func(t *testing.T) { testUsernsRemap(t, mode) })
	}
}

func testUsernsRemap(t *testing.T, mode string) {
	d := startUsernsDaemon(t, mode)
	log, _ := os.ReadFile(filepath.Join(env.tmp, "berthd-userns-"+mode+".log"))
	if want := "idmapped=" + strconv.FormatBool(mode == "idmapped"); !strings.Contains(string(log), want) {
		t.Fatalf("berthd log does not say %s:\n%s", want, log)
	}
	ruid, rgid := remapRoot(t)
	if ruid == 0 || rgid == 0 {
		t.Fatalf("remap range starts at %d:%d", ruid, rgid)
	}
	// The data root: no one else may walk it; the remapped root's group may.
	var rootSt syscall.Stat_t
	if err := syscall.Stat(filepath.Join(env.tmp, "userns-"+mode, "data"), &rootSt); err != nil || rootSt.Mode&0o777 != 0o710 || int(rootSt.Gid) != rgid {
		t.Errorf("data root: mode %o gid %d (%v), want 0710 and group %d", rootSt.Mode&0o777, rootSt.Gid, err, rgid)
	}
	if info := d.must(t, "info", "--format", "{{.SecurityOptions}}"); !strings.Contains(info, "name=userns") {
		t.Errorf("docker info security options: %s", info)
	}

	// A host directory only root may read, and one anyone may write.
	host := t.TempDir()
	// Bind sources are opened by the container's root, which must be able to reach them, as in Docker.
	for _, dir := range []string{filepath.Dir(host), host} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("host root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(host, "open")
	if err := os.Mkdir(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	vol := "usernsvol" + strconv.Itoa(os.Getpid())
	id := d.must(t, "run", "-d", "-v", host+":/host", "-v", vol+":/data", busybox, "sleep", "1000")

	// Root inside, the remapped uid outside.
	pid := d.must(t, "inspect", "-f", "{{.State.Pid}}", id)
	if uid, gid := statusIDs(t, pid); uid != strconv.Itoa(ruid) || gid != strconv.Itoa(rgid) {
		t.Errorf("container init runs as %s:%s on the host, want %d:%d", uid, gid, ruid, rgid)
	}
	if got := d.must(t, "exec", id, "id", "-u"); got != "0" {
		t.Errorf("id -u in the container: %q", got)
	}
	if got := strings.Fields(d.must(t, "exec", id, "cat", "/proc/self/uid_map")); len(got) != 3 || got[0] != "0" || got[1] != strconv.Itoa(ruid) {
		t.Errorf("exec's uid_map: %v", got)
	}
	if got := d.must(t, "exec", "-u", "1000", id, "id", "-u"); got != "1000" {
		t.Errorf("exec -u 1000: %q", got)
	}
	// An exec'd process is the remapped root on the host too, not the host's root.
	marker := fmt.Sprintf("sleep %d", 700000+os.Getpid()%100000)
	d.must(t, "exec", "-d", id, "sh", "-c", "exec "+marker)
	var execPid string
	for i := 0; i < 50 && execPid == ""; i++ {
		out, _ := exec.Command("pgrep", "-xf", marker).Output()
		execPid = strings.TrimSpace(string(out))
		time.Sleep(20 * time.Millisecond)
	}
	if uid, _ := statusIDs(t, strings.Fields(execPid + " x")[0]); uid != strconv.Itoa(ruid) {
		t.Errorf("exec'd process runs as host uid %s, want %d", uid, ruid)
	}

	// Root inside is nobody special to the host's files.
	if r := d.docker(t, "exec", id, "cat", "/host/secret"); r.code == 0 || !strings.Contains(r.stderr+r.stdout, "Permission denied") {
		t.Errorf("container root read a host root-only file: %s", r)
	}
	if r := d.docker(t, "exec", id, "touch", "/host/new"); r.code == 0 {
		t.Errorf("container root wrote into a host root-owned directory: %s", r)
	}
	if r := d.docker(t, "exec", id, "chown", "0:0", "/host/secret"); r.code == 0 {
		t.Errorf("container root chowned a host file: %s", r)
	}
	d.must(t, "exec", id, "touch", "/host/open/made-inside")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(open, "made-inside"), &st); err != nil {
		t.Fatal(err)
	}
	if int(st.Uid) != ruid || int(st.Gid) != rgid {
		t.Errorf("file made by container root in a bind mount is %d:%d on the host, want %d:%d", st.Uid, st.Gid, ruid, rgid)
	}

	// The image's files are root's inside; writes to the rootfs and the volume land as the container's ids.
	if got := d.must(t, "exec", id, "stat", "-c", "%u:%g", "/bin"); got != "0:0" {
		t.Errorf("/bin in the container is owned by %s", got)
	}
	d.must(t, "exec", id, "sh", "-c", "mkdir /made && echo x > /made/root && echo y > /made/five && chown 5:5 /made/five && echo v > /data/v && echo h >> /etc/hosts")
	if got := d.must(t, "exec", id, "stat", "-c", "%u:%g", "/made/five"); got != "5:5" {
		t.Errorf("chown 5:5 inside shows %s", got)
	}
	mp := d.must(t, "volume", "inspect", "-f", "{{.Mountpoint}}", vol)
	if mode == "idmapped" {
		// Files the container's root makes in a volume are root's on disk: host users must not reach them.
		if fi, err := os.Stat(filepath.Dir(filepath.Dir(mp))); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("volumes directory: %v %v, want mode 0700", fi.Mode(), err)
		}
	}
	if err := syscall.Stat(filepath.Join(mp, "v"), &st); err != nil {
		t.Fatal(err)
	}
	// On disk: the container's ids with idmapped mounts, the remapped host ids with chowned copies (as
	// Docker's remapped roots have).
	wantVol := "0:0"
	if mode == "chown" {
		wantVol = fmt.Sprintf("%d:%d", ruid, rgid)
	}
	if got := fmt.Sprintf("%d:%d", st.Uid, st.Gid); got != wantVol {
		t.Errorf("volume file written by container root is %s on disk, want %s", got, wantVol)
	}
	// docker cp into the running container: owners as in the archive, seen from inside.
	cpSrc := filepath.Join(t.TempDir(), "cp.txt")
	if err := os.WriteFile(cpSrc, []byte("cp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(cpSrc, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	d.must(t, "cp", "-a", cpSrc, id+":/made/")
	if got := d.must(t, "exec", id, "stat", "-c", "%u:%g", "/made/cp.txt"); got != "1234:1234" {
		t.Errorf("docker cp -a into the running container: owner %s inside, want 1234:1234", got)
	}
	// Reading back through cp and export gives the container's ids, not the host's.
	owners := func(r io.Reader) map[string]string {
		out := map[string]string{}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			out[strings.TrimPrefix(h.Name, "./")] = fmt.Sprintf("%d:%d", h.Uid, h.Gid)
		}
		return out
	}
	cp := exec.Command(dockerBin(), "-H", "unix://"+d.sock, "cp", id+":/made", "-")
	tarOut, err := cp.Output()
	if err != nil {
		t.Fatalf("docker cp out: %v", err)
	}
	if o := owners(bytes.NewReader(tarOut)); o["made/five"] != "5:5" || o["made/root"] != "0:0" || o["made/cp.txt"] != "1234:1234" {
		t.Errorf("docker cp from the running container: owners %v", o)
	}

	export := func() map[string]string {
		out, err := exec.Command(dockerBin(), "-H", "unix://"+d.sock, "export", id).Output()
		if err != nil {
			t.Fatalf("docker export: %v", err)
		}
		return owners(bytes.NewReader(out))
	}
	if o := export(); o["made/five"] != "5:5" || o["bin/busybox"] != "0:0" || o["made/cp.txt"] != "1234:1234" {
		t.Errorf("docker export of the running container: made/five %s, bin/busybox %s, made/cp.txt %s", o["made/five"], o["bin/busybox"], o["made/cp.txt"])
	}

	// The container's layer as the engine stores it: commit, then read it in a container without remapping.
	d.must(t, "commit", id, "userns-committed")
	if got := d.must(t, "run", "--rm", "--userns", "host", "userns-committed", "stat", "-c", "%n %u:%g", "/made/root", "/made/five", "/made/cp.txt"); got != "/made/root 0:0\n/made/five 5:5\n/made/cp.txt 1234:1234" {
		t.Errorf("committed layer owners:\n%s", got)
	}
	if got := d.must(t, "run", "--rm", "--userns", "host", "-v", vol+":/data", busybox, "stat", "-c", "%u:%g", "/data/v"); got != wantVol {
		t.Errorf("volume file seen by a plain container: %s", got)
	}

	// A local volume over a host directory of the user's is a bind: no idmapped mount, no chown.
	devDir := filepath.Join(host, "devvol")
	if err := os.Mkdir(devDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(devDir, 0o777); err != nil {
		t.Fatal(err)
	}
	devVol := "usernsdev" + strconv.Itoa(os.Getpid())
	d.must(t, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+devDir, devVol)
	d.must(t, "run", "--rm", "-v", devVol+":/d", busybox, "sh", "-c", "echo x > /d/f")
	if err := syscall.Stat(filepath.Join(devDir, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if int(st.Uid) != ruid {
		t.Errorf("a file made by the container's root in a device volume is uid %d on the host, want %d (not remapped)", st.Uid, ruid)
	}
	if err := syscall.Stat(devDir, &st); err != nil || st.Uid != 0 {
		t.Errorf("the device volume's host directory changed owner: %d %v", st.Uid, err)
	}
	d.must(t, "volume", "rm", devVol)

	// --userns host runs in the host's user namespace.
	if got := strings.Fields(d.must(t, "run", "--rm", "--userns", "host", busybox, "cat", "/proc/self/uid_map")); strings.Join(got, " ") != "0 0 4294967295" {
		t.Errorf("--userns host uid_map: %v", got)
	}
	// The container's sysfs shows its own network devices, not the host's.
	hostMAC, _ := os.ReadFile("/sys/class/net/" + d.bridge + "/address")
	if got := d.must(t, "run", "--rm", busybox, "ls", "/sys/class/net"); strings.Join(strings.Fields(got), " ") != "eth0 lo" {
		t.Errorf("/sys/class/net in a remapped container: %q", got)
	}
	_ = hostMAC

	// A TTY (the monitor's devpts instance, bound by path) and --init (the host's berth-init) work.
	tty := exec.Command("script", "-qec", dockerBin()+" -H unix://"+d.sock+" run --rm -t "+busybox+" sh -c 'tty; stat -c %u:%g /dev/pts/0'", "/dev/null")
	if out, err := tty.CombinedOutput(); err != nil || !strings.Contains(string(out), "/dev/pts/0") || !strings.Contains(string(out), "0:5") {
		t.Errorf("run -t in a remapped container (want its terminal /dev/pts/0, owned by its root and tty group 0:5): %v\n%s", err, out)
	}
	if got := d.must(t, "run", "--rm", "--init", busybox, "cat", "/proc/1/cmdline"); !strings.Contains(got, "docker-init") {
		t.Errorf("--init: pid 1 is %q", got)
	}

	// What a remapped container cannot have.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--privileged"}, "privileged mode is incompatible with user namespaces"},
		{[]string{"--network", "host"}, "cannot share the host's network namespace when user namespaces are enabled"},
	} {
		r := d.docker(t, append(append([]string{"run", "--rm"}, tc.args...), busybox, "true")...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("run %v: %s\nwant %q", tc.args, r, tc.want)
		}
	}
	d.must(t, "run", "--rm", "--privileged", "--userns", "host", busybox, "true")

	// A build's RUN steps run remapped too, and their layers hold the container's ids.
	ctxDir := t.TempDir()
	df := "FROM " + busybox + "\nRUN mkdir /b && echo b > /b/f && chown 7:8 /b/f\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	d.must(t, "build", "-q", "-t", "userns-built", ctxDir)
	// The berth CLI's --userns host, and its default.
	berthRun := func(args ...string) string {
		r := runCmd(t, exec.Command(env.berth, append([]string{"-H", "unix://" + d.sock, "run", "--rm"}, args...)...), "")
		if r.code != 0 {
			t.Fatalf("berth run %v: %s", args, r)
		}
		return strings.TrimSpace(r.stdout)
	}
	if got := berthRun("--userns", "host", "userns-built", "stat", "-c", "%u:%g", "/b/f"); got != "7:8" {
		t.Errorf("berth run --userns host: %q", got)
	}
	if got := strings.Fields(berthRun(busybox, "cat", "/proc/self/uid_map")); len(got) != 3 || got[1] != strconv.Itoa(ruid) {
		t.Errorf("berth run's uid_map: %v", got)
	}
	if got := d.must(t, "run", "--rm", "--userns", "host", "userns-built", "stat", "-c", "%u:%g", "/b", "/b/f"); got != "0:0\n7:8" {
		t.Errorf("built layer owners:\n%s", got)
	}

	// A stopped container: export, cp out and in, and the owners seen when it runs again.
	d.must(t, "stop", "-t", "1", id)
	if o := export(); o["made/five"] != "5:5" || o["bin/busybox"] != "0:0" {
		t.Errorf("docker export of the stopped container: made/five %s, bin/busybox %s", o["made/five"], o["bin/busybox"])
	}
	d.must(t, "cp", "-a", cpSrc, id+":/etc/cp2.txt")
	d.must(t, "start", id)
	if got := d.must(t, "exec", id, "stat", "-c", "%u:%g", "/etc/cp2.txt", "/made/five", "/etc/passwd", "/bin"); got != "1234:1234\n5:5\n0:0\n0:0" && got != "1234:1234\n5:5\n0:0" {
		t.Errorf("owners after cp into the stopped container and a restart:\n%s", got)
	}
	d.must(t, "rm", "-f", id)
	d.must(t, "volume", "rm", vol)
}
