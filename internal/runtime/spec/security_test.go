package spec

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseSecurityOpt(t *testing.T) {
	cases := []struct {
		in   []string
		want SecurityOptions
		err  string
	}{
		{in: nil, want: SecurityOptions{}},
		{in: []string{"no-new-privileges"}, want: SecurityOptions{NoNewPrivileges: true}},
		{in: []string{"no-new-privileges=false"}, want: SecurityOptions{}},
		{in: []string{"no-new-privileges:true"}, want: SecurityOptions{NoNewPrivileges: true}},
		{in: []string{"seccomp=unconfined", "label=disable", "apparmor=unconfined"}, want: SecurityOptions{Seccomp: "unconfined"}},
		{in: []string{"seccomp"}, err: `invalid --security-opt 1: "seccomp"`},
		{in: []string{"bogus=1"}, err: `invalid --security-opt 2: "bogus=1"`},
		{in: []string{"no-new-privileges=perhaps"}, err: `invalid --security-opt 2: "no-new-privileges=perhaps"`},
	}
	for _, tc := range cases {
		got, err := ParseSecurityOpt(tc.in, false)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || !errdefs.IsInvalidParameter(err) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestGenerateSeccomp(t *testing.T) {
	root := fakeRootfs(t)
	s, err := Generate(Options{Rootfs: root, Args: []string{"sh"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Fatalf("default: want Docker's profile, got %+v", s.Linux.Seccomp)
	}
	allowed := func(s *specs.Spec, name string) bool {
		for _, sc := range s.Linux.Seccomp.Syscalls {
			if slices.Contains(sc.Names, name) && sc.Action == specs.ActAllow && len(sc.Args) == 0 {
				return true
			}
		}
		return false
	}
	if allowed(s, "mount") || !allowed(s, "read") {
		t.Fatal("default profile: mount allowed or read not")
	}
	// The profile follows the capabilities.
	s, err = Generate(Options{Rootfs: root, Args: []string{"sh"}, CapAdd: []string{"SYS_ADMIN"}})
	if err != nil || !allowed(s, "mount") {
		t.Fatalf("with CAP_SYS_ADMIN mount should be allowed: %v", err)
	}
	for _, o := range []Options{
		{Rootfs: root, Args: []string{"sh"}, Seccomp: SeccompUnconfined},
		{Rootfs: root, Args: []string{"sh"}, Privileged: true},
	} {
		s, err := Generate(o)
		if err != nil || s.Linux.Seccomp != nil {
			t.Fatalf("%+v: want no seccomp, got %v, %v", o, s.Linux.Seccomp, err)
		}
	}
	s, err = Generate(Options{Rootfs: root, Args: []string{"sh"}, Seccomp: `{"defaultAction":"SCMP_ACT_LOG","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`})
	if err != nil || s.Linux.Seccomp.DefaultAction != specs.ActLog || len(s.Linux.Seccomp.Syscalls) != 1 {
		t.Fatalf("custom profile: %+v, %v", s.Linux.Seccomp, err)
	}
	if _, err := Generate(Options{Rootfs: root, Args: []string{"sh"}, Seccomp: `{"defaultAction":`}); err == nil || !errdefs.IsInvalidParameter(err) {
		t.Fatalf("malformed profile: %v", err)
	}
}

func TestValidateSecurity(t *testing.T) {
	for _, tc := range []struct {
		opts      []string
		add, drop []string
		err       string
	}{
		{add: []string{"FOO"}, err: `invalid CapAdd: unknown capability: "CAP_FOO"`},
		{drop: []string{"cap_bar"}, err: `invalid CapDrop: unknown capability: "CAP_BAR"`},
		{opts: []string{`seccomp={"defaultAction":"SCMP_ACT_NOTIFY"}`}, err: "SCMP_ACT_NOTIFY"},
		{opts: []string{`seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":9,"op":"SCMP_CMP_EQ"}]}]}`}, err: "index 9"},
		{opts: []string{"seccomp=unconfined"}, add: []string{"ALL"}},
		{},
	} {
		err := ValidateSecurity(tc.opts, false, tc.add, tc.drop)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v %v %v: err %v, want %q", tc.opts, tc.add, tc.drop, err, tc.err)
		}
	}
}

func TestDevices(t *testing.T) {
	s, err := Generate(Options{Rootfs: fakeRootfs(t), Args: []string{"sh"},
		Devices:           []Device{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"}},
		DeviceCgroupRules: []string{"c 10:* rwm", "b *:* m"}})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/mynull" && d.Type == "c" && d.Major == 1 && d.Minor == 3 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no /dev/mynull in %+v", s.Linux.Devices)
	}
	rules := s.Linux.Resources.Devices
	n := len(rules)
	if r := rules[n-3]; !r.Allow || r.Type != "c" || *r.Major != 1 || *r.Minor != 3 || r.Access != "rw" {
		t.Errorf("device rule %+v", r)
	}
	if r := rules[n-2]; r.Type != "c" || *r.Major != 10 || r.Minor != nil || r.Access != "rwm" {
		t.Errorf("cgroup rule %+v", r)
	}
	if r := rules[n-1]; r.Type != "b" || r.Major != nil || r.Minor != nil || r.Access != "m" {
		t.Errorf("cgroup rule %+v", r)
	}
	for _, bad := range []string{"c 1:3", "q 1:3 r", "c 1:3 rwx", "c a:3 r"} {
		if _, err := ParseDeviceCgroupRule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	err = ValidateDevices([]Device{{PathOnHost: "/dev/nope"}}, nil)
	if err == nil || err.Error() != `error gathering device information while adding custom device "/dev/nope": no such file or directory` {
		t.Errorf("missing device: %v", err)
	}
}
