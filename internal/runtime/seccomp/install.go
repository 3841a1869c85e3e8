package seccomp

import (
	"fmt"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Filter is a compiled profile, ready to be loaded.
type Filter struct {
	prog  []unix.SockFilter
	flags uintptr
}

var filterFlags = map[specs.LinuxSeccompFlag]uintptr{
	specs.LinuxSeccompFlagLog:                           unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:                     unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv:              1 << 5, // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	specs.LinuxSeccompFlag("SECCOMP_FILTER_FLAG_TSYNC"): 0,      // one thread execs: nothing to sync
}

// Prepare compiles s. It is done before the process gives up its privileges, so a bad profile is
// reported as such; Load then has nothing left that can fail but the kernel's check.
func Prepare(s *specs.LinuxSeccomp) (*Filter, error) {
	raw, err := Compile(s)
	if err != nil {
		return nil, err
	}
	f := &Filter{prog: make([]unix.SockFilter, len(raw))}
	for i, r := range raw {
		f.prog[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	for _, fl := range s.Flags {
		v, ok := filterFlags[fl]
		if !ok {
			return nil, fmt.Errorf("seccomp: unknown flag %q", fl)
		}
		f.flags |= v
	}
	return f, nil
}

// Len is the program's length in instructions.
func (f *Filter) Len() int { return len(f.prog) }

// Load installs the filter on the calling thread; what it execs inherits it. The thread must have set
// no_new_privs or hold CAP_SYS_ADMIN. It makes one raw system call, nothing the filter could refuse.
func (f *Filter) Load() error {
	prog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, f.flags, uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return fmt.Errorf("load seccomp filter: %w", e)
	}
	return nil
}
