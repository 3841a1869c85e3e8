package cgroups

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// cgroup v2 has no devices.allow: device access is decided by eBPF programs of type CGROUP_DEVICE
// attached to the cgroup. deviceFilter compiles the spec's rule list into one, with the v1 list's meaning
// as runc gives it: rules apply in order and the last one that matches a request decides; nothing
// matching means deny. An allow rule matches when it grants every access asked for; a deny rule when it
// refuses any of them.

// Fields of struct bpf_cgroup_dev_ctx and the values in them (linux/bpf.h).
const (
	devCtxAccessType = 0 // (access << 16) | type
	devCtxMajor      = 4
	devCtxMinor      = 8

	devTypeBlock = 1
	devTypeChar  = 2
	devAccMknod  = 1
	devAccRead   = 2
	devAccWrite  = 4
)

// deviceFilter builds the program for rules.
func deviceFilter(rules []specs.LinuxDeviceCgroup) (asm.Instructions, error) {
	// R2 = type, R3 = access, R4 = major, R5 = minor.
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, devCtxAccessType, asm.Word),
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R2, 0xffff),
		asm.RSh.Imm(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, devCtxMajor, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, devCtxMinor, asm.Word),
	}
	// The last matching rule decides, so test them from the end and stop at the first match. A rule's
	// failed tests jump to the label put on the first instruction after it.
	label := ""
	emit := func(block ...asm.Instruction) {
		if label != "" {
			block[0] = block[0].WithSymbol(label)
			label = ""
		}
		insns = append(insns, block...)
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		next := fmt.Sprintf("rule%d", i)
		var typ int32
		switch r.Type {
		case "", "a":
		case "c":
			typ = devTypeChar
		case "b":
			typ = devTypeBlock
		default:
			return nil, fmt.Errorf("device rule %d: unknown type %q", i, r.Type)
		}
		var acc int32
		access := r.Access
		if access == "" {
			access = "rwm"
		}
		for _, c := range access {
			switch c {
			case 'r':
				acc |= devAccRead
			case 'w':
				acc |= devAccWrite
			case 'm':
				acc |= devAccMknod
			default:
				return nil, fmt.Errorf("device rule %d: unknown access %q", i, c)
			}
		}
		var block asm.Instructions
		if typ != 0 {
			block = append(block, asm.JNE.Imm(asm.R2, typ, next))
		}
		if acc != devAccRead|devAccWrite|devAccMknod {
			block = append(block, asm.Mov.Reg(asm.R6, asm.R3))
			if r.Allow {
				// Matches only when nothing outside the rule's access is asked for.
				block = append(block, asm.And.Imm(asm.R6, ^acc), asm.JNE.Imm(asm.R6, 0, next))
			} else {
				// Matches when anything the rule refuses is asked for.
				block = append(block, asm.And.Imm(asm.R6, acc), asm.JEq.Imm(asm.R6, 0, next))
			}
		}
		if r.Major != nil && *r.Major >= 0 {
			block = append(block, asm.JNE.Imm(asm.R4, int32(*r.Major), next))
		}
		if r.Minor != nil && *r.Minor >= 0 {
			block = append(block, asm.JNE.Imm(asm.R5, int32(*r.Minor), next))
		}
		verdict := int32(0)
		if r.Allow {
			verdict = 1
		}
		unconditional := len(block) == 0
		block = append(block, asm.Mov.Imm32(asm.R0, verdict), asm.Return())
		emit(block...)
		if unconditional {
			return insns, nil // it decides every request: the earlier rules are never reached
		}
		label = next
	}
	emit(asm.Mov.Imm32(asm.R0, 0), asm.Return())
	return insns, nil
}

// attachDeviceFilter loads the program for rules and attaches it to the cgroup directory dir. It is
// attached the classic way (BPF_PROG_ATTACH, not a bpf link), so it stays when this process exits, like
// a v1 devices.allow does, and goes with the cgroup.
func attachDeviceFilter(dir string, rules []specs.LinuxDeviceCgroup) error {
	insns, err := deviceFilter(rules)
	if err != nil {
		return err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.CGroupDevice, License: "Apache", Instructions: insns,
	})
	if err != nil {
		return fmt.Errorf("load device filter: %w", err)
	}
	defer prog.Close()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI,
	})
	if err != nil {
		return fmt.Errorf("attach device filter to %s: %w", dir, err)
	}
	return nil
}
