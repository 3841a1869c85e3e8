package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// program is a BPF program under construction whose jumps name labels; assemble resolves them. A
// conditional jump can only skip 255 instructions, so far targets are reached with an unconditional
// jump (32-bit offset) behind a short conditional one.
type program struct {
	insns  []insn
	labels map[string]int
	n      int // for newLabel
}

type insn struct {
	bpf.Instruction
	// For a bpf.JumpIf: the labels its true and false branches go to ("" = the next instruction).
	// For a bpf.Jump: the label it goes to.
	jt, jf string
}

func (p *program) emit(i bpf.Instruction) { p.insns = append(p.insns, insn{Instruction: i}) }

func (p *program) load(off uint32) { p.emit(bpf.LoadAbsolute{Off: off, Size: 4}) }

func (p *program) ret(v uint32) { p.emit(bpf.RetConstant{Val: v}) }

func (p *program) jump(label string) {
	p.insns = append(p.insns, insn{Instruction: bpf.Jump{}, jt: label})
}

func (p *program) jumpIf(cond bpf.JumpTest, val uint32, jt, jf string) {
	p.insns = append(p.insns, insn{Instruction: bpf.JumpIf{Cond: cond, Val: val}, jt: jt, jf: jf})
}

func (p *program) newLabel() string {
	p.n++
	return fmt.Sprintf(".L%d", p.n)
}

// label marks the position of the next instruction.
func (p *program) label(name string) {
	if p.labels == nil {
		p.labels = map[string]int{}
	}
	p.labels[name] = len(p.insns)
}

func (p *program) assemble() ([]bpf.Instruction, error) {
	out := make([]bpf.Instruction, len(p.insns))
	skip := func(from int, label string) (int, error) {
		if label == "" {
			return 0, nil
		}
		to, ok := p.labels[label]
		if !ok {
			return 0, fmt.Errorf("seccomp: internal error: no label %q", label)
		}
		if to <= from {
			return 0, fmt.Errorf("seccomp: internal error: backward jump to %q", label)
		}
		return to - from - 1, nil
	}
	for i, in := range p.insns {
		switch j := in.Instruction.(type) {
		case bpf.Jump:
			n, err := skip(i, in.jt)
			if err != nil {
				return nil, err
			}
			j.Skip = uint32(n)
			out[i] = j
		case bpf.JumpIf:
			if in.jt == "" && in.jf == "" {
				out[i] = j
				continue
			}
			t, err := skip(i, in.jt)
			if err != nil {
				return nil, err
			}
			f, err := skip(i, in.jf)
			if err != nil {
				return nil, err
			}
			if t > 255 || f > 255 {
				return nil, fmt.Errorf("seccomp: internal error: conditional jump too far (%d, %d)", t, f)
			}
			j.SkipTrue, j.SkipFalse = uint8(t), uint8(f)
			out[i] = j
		default:
			out[i] = in.Instruction
		}
	}
	return out, nil
}
