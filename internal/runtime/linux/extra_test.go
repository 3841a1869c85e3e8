package linux

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime/spec"
)

func TestPrivileged(t *testing.T) {
	host, err := spec.HostCapabilities()
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, spec.Options{Privileged: true, Args: sh(`grep CapEff /proc/self/status | cut -f2; grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; test -c /dev/kmsg && echo kmsg; wc -c < /proc/timer_list | tr -d ' '`)})
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 3 || lines[1] != "rw" || lines[len(lines)-1] == "0" {
		t.Fatalf("got %q (stderr %q)", r.stdout, r.stderr)
	}
	if _, err := os.Stat("/dev/kmsg"); err == nil && !strings.Contains(r.stdout, "kmsg") {
		t.Errorf("host device /dev/kmsg missing: %q", r.stdout)
	}
	// Count the bits of CapEff: it must be exactly the host's bounding set, not a fixed list.
	var eff uint64
	for _, c := range lines[0] {
		eff <<= 4
		switch {
		case c >= '0' && c <= '9':
			eff |= uint64(c - '0')
		case c >= 'a' && c <= 'f':
			eff |= uint64(c-'a') + 10
		}
	}
	n := 0
	for ; eff != 0; eff &= eff - 1 {
		n++
	}
	if n != len(host) {
		t.Errorf("CapEff %s has %d caps, host bounding set %d", lines[0], n, len(host))
	}
}

func TestStdin(t *testing.T) {
	o := spec.Options{Rootfs: sharedRootfs(t), Args: []string{"sh", "-c", "tr a-z A-Z"}}
	o.ID = testID(t)
	o.CgroupsPath = cgroupPath(o.ID)
	removeCgroupLeftovers(t, o.ID)
	s, err := spec.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	if err := spec.WriteBundle(bundle, s); err != nil {
		t.Fatal(err)
	}
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	defer outR.Close()
	exe, _ := os.Executable()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := testSpawn(ctx, t, SpawnOptions{ID: o.ID, Bundle: bundle, InitPath: exe, Stdio: Stdio{Stdin: inR, Stdout: outW}})
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		t.Fatal(err)
	}
	if _, err := io.WriteString(inW, "hello\n"); err != nil {
		t.Fatal(err)
	}
	inW.Close()
	out, _ := io.ReadAll(outR)
	st, err := p.Wait()
	if err != nil || st.Code != 0 || string(out) != "HELLO\n" {
		t.Fatalf("got %q %+v %v", out, st, err)
	}
}

// TestCancelledStart: a start abandoned through ctx leaves no process and no cgroup.
func TestCancelledStart(t *testing.T) {
	o := spec.Options{Rootfs: sharedRootfs(t), Args: []string{"true"}}
	o.ID = testID(t)
	o.CgroupsPath = cgroupPath(o.ID)
	removeCgroupLeftovers(t, o.ID)
	s, err := spec.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	if err := spec.WriteBundle(bundle, s); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := testSpawn(ctx, t, SpawnOptions{ID: o.ID, Bundle: bundle, InitPath: exe}); err == nil {
		t.Fatal("cancelled spawn succeeded")
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids" + o.CgroupsPath); err == nil {
		t.Error("cgroup left behind")
	}
}
