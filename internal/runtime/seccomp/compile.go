// Package seccomp turns the OCI runtime-spec seccomp section (linux.seccomp) into a classic BPF program
// and installs it, without libseccomp: the runtime's binaries are static and the init loads the filter as
// the last step before execve.
//
// The program has the semantics libseccomp gives the same rules, for the architectures whose syscall
// tables we have (x86_64, x86, x32, aarch64, arm; the native one is always included, as libseccomp does):
//
//   - a syscall of an architecture the profile does not name kills the process (libseccomp's bad-arch
//     action); an x32 syscall (nr with bit 30) counts as the x32 architecture;
//   - a syscall's rules are tried in the profile's order, rules without argument conditions last; the first
//     rule whose conditions all hold gives the action; none holding gives the default action;
//   - syscall names the architecture does not have are skipped (runc and libseccomp do the same), so one
//     profile serves every kernel and architecture.
//
// Argument conditions compare the 64-bit argument, as two 32-bit words, with the operators of the spec.
package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"

	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

// Return values of a seccomp filter (linux/seccomp.h).
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retTrace       = 0x7ff00000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000

	// x32SyscallBit marks an x32 syscall on the x86_64 audit architecture.
	x32SyscallBit = 0x40000000
	// maxInsns is the kernel's BPF_MAXINSNS.
	maxInsns = 4096
	// eperm is the errno of an ERRNO action without errnoRet, libseccomp's and runc's default.
	eperm = 1
)

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

var archByName = map[specs.Arch]*arch.Info{
	specs.ArchX86_64:  arch.X86_64,
	specs.ArchX86:     arch.I386,
	specs.ArchX32:     arch.X32,
	specs.ArchAARCH64: arch.AARCH64,
	specs.ArchARM:     arch.ARM,
}

// nativeArch is the architecture of this build, the one libseccomp always filters.
func nativeArch() (specs.Arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64, nil
	case "386":
		return specs.ArchX86, nil
	case "arm64":
		return specs.ArchAARCH64, nil
	case "arm":
		return specs.ArchARM, nil
	}
	return "", fmt.Errorf("seccomp: architecture %s is not supported", runtime.GOARCH)
}

// Action converts a spec action to the filter's return value.
func Action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(eperm)
	if errnoRet != nil {
		data = uint32(*errnoRet) & 0xffff
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActErrno:
		return retErrno | data, nil
	case specs.ActTrace:
		return retTrace | data, nil
	case specs.ActLog:
		return retLog, nil
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActNotify:
		return 0, errors.New("seccomp: SCMP_ACT_NOTIFY is not supported")
	}
	return 0, fmt.Errorf("seccomp: unknown action %q", a)
}

// rule is one condition set of one syscall with its action.
type rule struct {
	args []specs.LinuxSeccompArg
	ret  uint32
}

// Compile builds the filter program for s. An error means the profile cannot be enforced as written
// (an unknown action, operator or architecture, an argument index above 5, too big a program).
func Compile(s *specs.LinuxSeccomp) ([]bpf.RawInstruction, error) {
	def, err := Action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	native, err := nativeArch()
	if err != nil {
		return nil, err
	}
	wanted := map[specs.Arch]bool{native: true}
	for _, a := range s.Architectures {
		if _, ok := archByName[a]; !ok {
			if !knownArch[a] {
				return nil, fmt.Errorf("seccomp: unknown architecture %q", a)
			}
			continue // a real architecture this machine cannot run anyway
		}
		wanted[a] = true
	}
	for i, sc := range s.Syscalls {
		if _, err := Action(sc.Action, sc.ErrnoRet); err != nil {
			return nil, err
		}
		for _, a := range sc.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("seccomp: syscall rule %d: argument index %d out of range", i, a.Index)
			}
			if !knownOp[a.Op] {
				return nil, fmt.Errorf("seccomp: syscall rule %d: unknown operator %q", i, a.Op)
			}
		}
	}

	p := &program{insns: make([]bpf.RawInstruction, 0, 1024*len(wanted))}
	// Dispatch on the architecture; x86_64 and x32 share one audit value, told apart by the nr bit.
	p.load(offArch)
	var sections []*arch.Info
	var audits []arch.AuditArch
	for _, a := range []specs.Arch{specs.ArchX86_64, specs.ArchX32, specs.ArchX86, specs.ArchAARCH64, specs.ArchARM} {
		if !wanted[a] {
			continue
		}
		info := archByName[a]
		sections = append(sections, info)
		if !slices.Contains(audits, info.ID) {
			audits = append(audits, info.ID)
			p.skipIfNot(uint32(info.ID))
			p.jump(fmt.Sprintf("arch:%x", uint32(info.ID)))
		}
	}
	p.ret(retKillProcess)
	for _, id := range audits {
		p.label(fmt.Sprintf("arch:%x", uint32(id)))
		p.load(offNr)
		var main, x32 *arch.Info
		for _, info := range sections {
			if info.ID != id {
				continue
			}
			if info == arch.X32 {
				x32 = info
			} else {
				main = info
			}
		}
		if id == arch.X86_64.ID {
			// Split off x32 calls, even when only one of the two ABIs is allowed.
			p.emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: x32SyscallBit, SkipTrue: 1}.Assemble())
			p.jump("x86_64")
			if x32 == nil {
				p.ret(retKillProcess)
			} else {
				p.syscalls(x32, s.Syscalls, def)
			}
			p.label("x86_64")
			if main == nil {
				p.ret(retKillProcess)
				continue
			}
		}
		p.syscalls(main, s.Syscalls, def)
	}
	out, err := p.assemble()
	if err != nil {
		return nil, err
	}
	if len(out) > maxInsns {
		return nil, fmt.Errorf("seccomp: the profile compiles to %d instructions, more than the kernel's %d", len(out), maxInsns)
	}
	return out, nil
}

var knownOp = map[specs.LinuxSeccompOperator]bool{
	specs.OpNotEqual: true, specs.OpLessThan: true, specs.OpLessEqual: true, specs.OpEqualTo: true,
	specs.OpGreaterEqual: true, specs.OpGreaterThan: true, specs.OpMaskedEqual: true,
}

var knownArch = map[specs.Arch]bool{
	specs.ArchX86: true, specs.ArchX86_64: true, specs.ArchX32: true, specs.ArchARM: true,
	specs.ArchAARCH64: true, specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true, specs.ArchPPC: true,
	specs.ArchPPC64: true, specs.ArchPPC64LE: true, specs.ArchS390: true, specs.ArchS390X: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true, specs.ArchRISCV64: true, specs.ArchLOONGARCH64: true,
}

// rulesOf is one rule with all of args, except when an argument is compared more than once: then, as
// runc does (libseccomp refuses such a rule), each comparison is a rule of its own, so they are ORed.
func rulesOf(args []specs.LinuxSeccompArg, ret uint32) []rule {
	seen := map[uint]bool{}
	for _, a := range args {
		if seen[a.Index] {
			out := make([]rule, len(args))
			for i := range args {
				out[i] = rule{args: args[i : i+1], ret: ret}
			}
			return out
		}
		seen[a.Index] = true
	}
	return []rule{{args: args, ret: ret}}
}

// syscalls emits, for the architecture's numbering (nr already in A), the dispatch on the syscall number
// and each syscall's rules.
func (p *program) syscalls(info *arch.Info, list []specs.LinuxSyscall, def uint32) {
	// Indexed by the number without the ABI bit: syscall numbers are small, and this is the hot part of
	// a compile (a map here costs more than the rest).
	byNr := make([][]rule, 1024)
	for _, sc := range list {
		ret, _ := Action(sc.Action, sc.ErrnoRet) // checked by Compile
		rules := rulesOf(sc.Args, ret)
		for _, name := range sc.Names {
			nr, ok := info.SyscallNames[name]
			if !ok {
				continue
			}
			for nr >= len(byNr) {
				byNr = append(byNr, make([][]rule, len(byNr))...)
			}
			byNr[nr] = append(byNr[nr], rules...)
		}
	}
	var nrs []int
	for nr, rules := range byNr {
		if len(rules) == 0 {
			continue
		}
		if len(rules) > 1 {
			// Unconditional rules after the conditional ones: the first one that applies decides.
			sort.SliceStable(rules, func(i, j int) bool { return len(rules[i].args) > 0 && len(rules[j].args) == 0 })
		}
		nrs = append(nrs, nr)
	}
	prefix := info.Name + ":"
	var blocks []int
	for _, nr := range nrs {
		rules := byNr[nr]
		if len(rules[0].args) == 0 {
			// The common case, inline: jeq nr; ret action.
			p.skipIfNot(uint32(nr | info.SeccompMask))
			p.ret(rules[0].ret)
			continue
		}
		p.skipIfNot(uint32(nr | info.SeccompMask))
		p.jump(fmt.Sprintf("%s%d", prefix, nr))
		blocks = append(blocks, nr)
	}
	p.ret(def)
	for _, nr := range blocks {
		p.label(fmt.Sprintf("%s%d", prefix, nr))
		for i, r := range byNr[nr] {
			next := fmt.Sprintf("%s%d.%d", prefix, nr, i+1)
			for _, a := range r.args {
				p.cond(a, next)
			}
			p.ret(r.ret)
			p.label(next)
		}
		p.ret(def)
	}
}

// cond emits a check of one argument condition that falls through when it holds and jumps to fail when
// it does not. It clobbers A.
func (p *program) cond(a specs.LinuxSeccompArg, fail string) {
	lo := uint32(offArgs + 8*a.Index)
	hi := lo + 4
	vHi, vLo := uint32(a.Value>>32), uint32(a.Value)
	ok := p.newLabel()
	switch a.Op {
	case specs.OpEqualTo:
		p.load(hi)
		p.jumpIf(bpf.JumpEqual, vHi, "", fail)
		p.load(lo)
		p.jumpIf(bpf.JumpEqual, vLo, "", fail)
	case specs.OpNotEqual:
		p.load(hi)
		p.jumpIf(bpf.JumpEqual, vHi, "", ok)
		p.load(lo)
		p.jumpIf(bpf.JumpEqual, vLo, fail, "")
	case specs.OpMaskedEqual:
		// (arg & value) == valueTwo, libseccomp's SCMP_CMP_MASKED_EQ(mask, datum).
		wHi, wLo := uint32(a.ValueTwo>>32), uint32(a.ValueTwo)
		p.load(hi)
		p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vHi}.Assemble())
		p.jumpIf(bpf.JumpEqual, wHi, "", fail)
		p.load(lo)
		p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: vLo}.Assemble())
		p.jumpIf(bpf.JumpEqual, wLo, "", fail)
	case specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpLessThan, specs.OpLessEqual:
		// Decided by the high words unless they are equal, then by the low words (unsigned).
		greater := a.Op == specs.OpGreaterThan || a.Op == specs.OpGreaterEqual
		p.load(hi)
		if greater {
			p.jumpIf(bpf.JumpGreaterThan, vHi, ok, "")
		} else {
			p.jumpIf(bpf.JumpLessThan, vHi, ok, "")
		}
		p.jumpIf(bpf.JumpEqual, vHi, "", fail)
		p.load(lo)
		cond := map[specs.LinuxSeccompOperator]bpf.JumpTest{
			specs.OpGreaterThan: bpf.JumpGreaterThan, specs.OpGreaterEqual: bpf.JumpGreaterOrEqual,
			specs.OpLessThan: bpf.JumpLessThan, specs.OpLessEqual: bpf.JumpLessOrEqual,
		}[a.Op]
		p.jumpIf(cond, vLo, "", fail)
	}
	p.label(ok)
}
