package seccomp

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"

	"github.com/elastic/go-seccomp-bpf/arch"
	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// call is the seccomp_data of one system call. The VM loads words big-endian, so each 32-bit field is
// stored that way: the program sees the values the kernel's native loads would give it.
func call(audit arch.AuditArch, nr int, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], uint32(nr))
	binary.BigEndian.PutUint32(b[4:], uint32(audit))
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[16+8*i+4:], uint32(a>>32))
	}
	return b
}

// newVM compiles p and loads it in x/net/bpf's interpreter, which checks the program as it disassembles.
func newVM(p *specs.LinuxSeccomp) (*bpf.VM, error) {
	raw, err := Compile(p)
	if err != nil {
		return nil, err
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		return nil, fmt.Errorf("program does not disassemble")
	}
	return bpf.NewVM(insns)
}

func run(t *testing.T, vm *bpf.VM, in []byte) uint32 {
	t.Helper()
	out, err := vm.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(out)
}

func dockerDefault(t *testing.T, caps ...string) *specs.LinuxSeccomp {
	t.Helper()
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	p, err := mobyseccomp.GetDefaultProfile(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDockerDefaultProfile(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("syscall numbers below are x86_64's")
	}
	x64 := arch.X86_64
	nr := func(name string) int { return x64.SyscallNames[name] }
	const (
		allow = retAllow
		eperm = retErrno | 1
	)
	nsFlags := uint64(unix.CLONE_NEWNS | unix.CLONE_NEWUSER)
	cases := []struct {
		name string
		caps []string
		in   []byte
		want uint32
	}{
		{"getpid", nil, call(x64.ID, nr("getpid")), allow},
		{"unshare", nil, call(x64.ID, nr("unshare"), unix.CLONE_NEWNS), eperm},
		{"unshare with SYS_ADMIN", []string{"CAP_SYS_ADMIN"}, call(x64.ID, nr("unshare"), unix.CLONE_NEWNS), allow},
		{"mount", nil, call(x64.ID, nr("mount")), eperm},
		{"keyctl", nil, call(x64.ID, nr("keyctl")), eperm},
		{"clone thread", nil, call(x64.ID, nr("clone"), unix.CLONE_VM|unix.CLONE_THREAD|17), allow},
		{"clone namespaces", nil, call(x64.ID, nr("clone"), nsFlags|17), eperm},
		{"clone namespaces with SYS_ADMIN", []string{"CAP_SYS_ADMIN"}, call(x64.ID, nr("clone"), nsFlags), allow},
		{"clone3 says ENOSYS", nil, call(x64.ID, nr("clone3")), retErrno | uint32(unix.ENOSYS)},
		{"personality linux", nil, call(x64.ID, nr("personality"), 0), allow},
		{"personality other", nil, call(x64.ID, nr("personality"), 0x12345), eperm},
		{"ptrace", nil, call(x64.ID, nr("ptrace")), allow}, // allowed from kernel 4.8 on
		{"socket inet", nil, call(x64.ID, nr("socket"), unix.AF_INET), allow},
		{"socket vsock", nil, call(x64.ID, nr("socket"), unix.AF_VSOCK), eperm},
		{"socket high bits", nil, call(x64.ID, nr("socket"), 1<<32|unix.AF_INET), eperm},
		{"reboot", nil, call(x64.ID, nr("reboot")), eperm},
		{"reboot with SYS_BOOT", []string{"CAP_SYS_BOOT"}, call(x64.ID, nr("reboot")), allow},
		{"x32 getpid", nil, call(x64.ID, arch.X32.SyscallNames["getpid"]|x32SyscallBit), allow},
		{"x32 mount", nil, call(x64.ID, arch.X32.SyscallNames["mount"]|x32SyscallBit), eperm},
		{"i386 getpid", nil, call(arch.I386.ID, arch.I386.SyscallNames["getpid"]), allow},
		{"i386 unshare", nil, call(arch.I386.ID, arch.I386.SyscallNames["unshare"]), eperm},
		{"aarch64 is not this profile's", nil, call(arch.AARCH64.ID, 172), retKillProcess},
		{"unknown syscall number", nil, call(x64.ID, 999), eperm},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vm, err := newVM(dockerDefault(t, tc.caps...))
			if err != nil {
				t.Fatal(err)
			}
			if got := run(t, vm, tc.in); got != tc.want {
				t.Fatalf("got %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestOperators(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x86_64 only")
	}
	nr := arch.X86_64.SyscallNames["read"]
	const big = 5<<32 | 7
	cases := []struct {
		op       specs.LinuxSeccompOperator
		v, v2    uint64
		arg      uint64
		want     bool
		why      string
		argIndex uint
	}{
		{op: specs.OpEqualTo, v: big, arg: big, want: true},
		{op: specs.OpEqualTo, v: big, arg: 7, want: false, why: "high word differs"},
		{op: specs.OpNotEqual, v: big, arg: 7, want: true},
		{op: specs.OpNotEqual, v: big, arg: big, want: false},
		{op: specs.OpGreaterThan, v: big, arg: 6 << 32, want: true},
		{op: specs.OpGreaterThan, v: big, arg: 5<<32 | 8, want: true},
		{op: specs.OpGreaterThan, v: big, arg: big, want: false},
		{op: specs.OpGreaterThan, v: big, arg: 4<<32 | 0xffffffff, want: false},
		{op: specs.OpGreaterEqual, v: big, arg: big, want: true},
		{op: specs.OpGreaterEqual, v: big, arg: 5<<32 | 6, want: false},
		{op: specs.OpLessThan, v: big, arg: 5<<32 | 6, want: true},
		{op: specs.OpLessThan, v: big, arg: big, want: false},
		{op: specs.OpLessThan, v: big, arg: 6 << 32, want: false},
		{op: specs.OpLessEqual, v: big, arg: big, want: true},
		{op: specs.OpLessEqual, v: big, arg: 4<<32 | 0xffffffff, want: true},
		{op: specs.OpLessEqual, v: big, arg: 5<<32 | 8, want: false},
		{op: specs.OpMaskedEqual, v: 0xff00000000ff, v2: 0x120000000034, arg: 0x12ab0000cd34, want: true},
		{op: specs.OpMaskedEqual, v: 0xf0, v2: 0x10, arg: 0x1f, want: true},
		{op: specs.OpMaskedEqual, v: 0xf0, v2: 0x10, arg: 0x2f, want: false},
		{op: specs.OpEqualTo, v: 3, arg: 3, want: true, argIndex: 5},
	}
	for _, tc := range cases {
		prof := &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno,
			Syscalls: []specs.LinuxSyscall{{
				Names: []string{"read"}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{{Index: tc.argIndex, Value: tc.v, ValueTwo: tc.v2, Op: tc.op}},
			}},
		}
		vm, err := newVM(prof)
		if err != nil {
			t.Fatal(err)
		}
		args := make([]uint64, 6)
		args[tc.argIndex] = tc.arg
		got := run(t, vm, call(arch.X86_64.ID, nr, args...)) == retAllow
		if got != tc.want {
			t.Errorf("%s %#x (%#x) on %#x: matched %v, want %v %s", tc.op, tc.v, tc.v2, tc.arg, got, tc.want, tc.why)
		}
	}
}

func TestRepeatedArgumentIsOr(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("x86_64 only")
	}
	nr := arch.X86_64.SyscallNames["personality"]
	prof := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: 1, Op: specs.OpEqualTo}, {Index: 0, Value: 2, Op: specs.OpEqualTo},
		}}},
	}
	vm, err := newVM(prof)
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[uint64]uint32{1: retAllow, 2: retAllow, 3: retErrno | 1} {
		if got := run(t, vm, call(arch.X86_64.ID, nr, v)); got != want {
			t.Errorf("personality(%d): got %#x, want %#x", v, got, want)
		}
	}
}

func TestBadProfiles(t *testing.T) {
	cases := map[string]*specs.LinuxSeccomp{
		"action":   {DefaultAction: "SCMP_ACT_NOPE"},
		"notify":   {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActNotify}}},
		"operator": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_SOMETIMES"}}}}},
		"index":    {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}},
		"arch":     {DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}},
	}
	for name, p := range cases {
		if _, err := Prepare(p); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDefaultProfileSize(t *testing.T) {
	f, err := Prepare(dockerDefault(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Docker's default profile: %d instructions", f.Len())
}

func BenchmarkPrepareDefault(b *testing.B) {
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	p, err := mobyseccomp.GetDefaultProfile(s)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := Prepare(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDefaultProfile(b *testing.B) {
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}}
	for b.Loop() {
		if _, err := mobyseccomp.GetDefaultProfile(s); err != nil {
			b.Fatal(err)
		}
	}
}
