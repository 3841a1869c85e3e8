package cgroups

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// unifiedRoot is a cgroup2 mount of this host (the whole tree, or the unified part of a hybrid one).
func unifiedRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 2 && fields[2] == "cgroup2" {
			return fields[1]
		}
	}
	t.Skip("no cgroup2 mount")
	return ""
}

// TestDeviceFilter attaches a filter to a fresh cgroup2 directory and checks, with real opens from a
// process started in it, that the rules decide as a v1 devices list would.
func TestDeviceFilter(t *testing.T) {
	root := unifiedRoot(t)
	dir, err := os.MkdirTemp(root, "berth-devtest-")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	i64 := func(v int64) *int64 { return &v }
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, // null
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},   // zero, read only
		{Allow: true, Type: "c", Major: i64(1), Minor: nil, Access: "rw"},     // every mem device...
		{Allow: false, Type: "c", Major: i64(1), Minor: i64(8), Access: "w"},  // ...but random's writes
	}
	if err := attachDeviceFilter(dir, rules); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	try := func(script string) bool {
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
		return cmd.Run() == nil
	}
	cases := []struct {
		script string
		ok     bool
	}{
		{": < /dev/null", true},
		{": > /dev/null", true},
		{": < /dev/zero", true},
		{": < /dev/full", true}, // 1:7 by the major-only rule
		{": > /dev/full", true}, // the same rule grants w
		{": < /dev/random", true},
		{": > /dev/random", false}, // the later deny rule wins
		{": < /dev/tty", false},    // 5:0 matches nothing: denied
	}
	for _, tc := range cases {
		if got := try(tc.script); got != tc.ok {
			t.Errorf("%s: allowed=%v, want %v", tc.script, got, tc.ok)
		}
	}
	// mknod is an access of its own.
	tmp := t.TempDir()
	if try("mknod "+filepath.Join(tmp, "n")+" c 1 3") != true {
		t.Error("mknod of an rwm device refused")
	}
	if try("mknod "+filepath.Join(tmp, "z")+" c 1 5") != false {
		t.Error("mknod of a device allowed only r was let through")
	}
}
