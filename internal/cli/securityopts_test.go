package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
)

func TestParseDevice(t *testing.T) {
	cases := map[string]container.DeviceMapping{
		"/dev/fuse":           {PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
		"/dev/fuse:r":         {PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "r"},
		"/dev/fuse:/dev/f":    {PathOnHost: "/dev/fuse", PathInContainer: "/dev/f", CgroupPermissions: "rwm"},
		"/dev/fuse:/dev/f:mr": {PathOnHost: "/dev/fuse", PathInContainer: "/dev/f", CgroupPermissions: "mr"},
	}
	for in, want := range cases {
		got, err := parseDevice(in)
		if err != nil || got != want {
			t.Errorf("%s: %+v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"/a:/b:rwx", "dev/fuse", "/a:b", "/a:/b:r:x", "/a:/b:rr"} {
		if _, err := parseDevice(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestParseSecurityOptsReadsProfile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(p, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, unmasked, err := parseSecurityOpts([]string{"no-new-privileges", "seccomp=" + p, "systempaths=unconfined", "seccomp=unconfined"})
	if err != nil || !unmasked || len(got) != 3 {
		t.Fatal(got, unmasked, err)
	}
	if got[0] != "no-new-privileges" || got[1] != `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}` || got[2] != "seccomp=unconfined" {
		t.Fatalf("%q", got)
	}
	if _, _, err := parseSecurityOpts([]string{"seccomp"}); err == nil || !strings.Contains(err.Error(), "Invalid --security-opt") {
		t.Fatalf("no value: %v", err)
	}
	if _, _, err := parseSecurityOpts([]string{"seccomp=/nonexistent"}); err == nil || !strings.Contains(err.Error(), "opening seccomp profile") {
		t.Fatalf("missing file: %v", err)
	}
}
