package userns

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func withSubidFiles(t *testing.T, subuid, subgid string) {
	t.Helper()
	dir := t.TempDir()
	u, g := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	if err := os.WriteFile(u, []byte(subuid), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(g, []byte(subgid), 0o644); err != nil {
		t.Fatal(err)
	}
	oldU, oldG := subuidFile, subgidFile
	subuidFile, subgidFile = u, g
	t.Cleanup(func() { subuidFile, subgidFile = oldU, oldG })
}

func TestParseRanges(t *testing.T) {
	// Two ranges for uid 4242 (by number), one for gid 4343; unrelated lines are skipped.
	withSubidFiles(t, "# comment\nalice:100000:65536\n4242:200000:1000\n4242:300000:500\n", "4343:400000:65536\n")
	r, err := Parse("4242:4343")
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 1000}, {ContainerID: 1000, HostID: 300000, Size: 500}}
	if len(r.UIDs) != 2 || r.UIDs[0] != want[0] || r.UIDs[1] != want[1] {
		t.Fatalf("uid ranges %+v, want %+v", r.UIDs, want)
	}
	if r.RootUID() != 200000 || r.RootGID() != 400000 {
		t.Fatalf("root %d:%d", r.RootUID(), r.RootGID())
	}
	for id, host := range map[int]int{0: 200000, 999: 200999, 1000: 300000, 1499: 300499, 1500: -1} {
		if got, _ := r.HostUID(id); got != host {
			t.Errorf("HostUID(%d) = %d, want %d", id, got, host)
		}
	}
}

func TestParseErrors(t *testing.T) {
	withSubidFiles(t, "4242:0:65536\n4444:100000:x\n", "")
	for value, want := range map[string]string{
		"4242:4242":             "starts at 0",
		"4444:4444":             "malformed line",
		"4545:4545":             "no subordinate uid range",
		":x":                    "invalid --userns-remap",
		"no-such-user-berth-xx": "no such user",
	} {
		_, err := Parse(value)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", value, err, want)
		}
	}
	if r, err := Parse(""); r != nil || err != nil {
		t.Errorf("Parse(\"\") = %v, %v", r, err)
	}
}
