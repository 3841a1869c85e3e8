package seccomp

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// program is a BPF program under construction whose jumps name labels; assemble resolves them. It holds
// raw instructions (bpf.Instruction values assembled as they are emitted), because a profile compiles to
// thousands of them and this runs on every container start. A conditional jump can only skip 255
// instructions, so far targets are reached with an unconditional jump (32-bit offset) behind a short
// conditional one.
type program struct {
	insns  []bpf.RawInstruction
	fixups []fixup
	labels map[string]int
	n      int // for newLabel
}

// fixup says which labels instruction at is to jump to: for a conditional jump, jt and jf ("" = the next
// instruction); for an unconditional one, jt.
type fixup struct {
	at     int
	jt, jf string
}

// emit appends an instruction without labels. Callers pass a concrete bpf value's Assemble(), not a
// bpf.Instruction: boxing thousands of them would cost as many allocations.
func (p *program) emit(raw bpf.RawInstruction, err error) {
	if err != nil {
		panic(fmt.Sprintf("seccomp: bad instruction: %v", err)) // only constant, valid ones are emitted
	}
	p.insns = append(p.insns, raw)
}

func (p *program) load(off uint32) { p.emit(bpf.LoadAbsolute{Off: off, Size: 4}.Assemble()) }

func (p *program) ret(v uint32) { p.emit(bpf.RetConstant{Val: v}.Assemble()) }

// skipIfNot skips the next instruction unless A == val.
func (p *program) skipIfNot(val uint32) {
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: val, SkipFalse: 1}.Assemble())
}

func (p *program) jump(label string) {
	p.fixups = append(p.fixups, fixup{at: len(p.insns), jt: label})
	p.emit(bpf.Jump{}.Assemble())
}

// jumpIf jumps to jt when A cond val holds, else to jf. The kernel only has ==, >, >= and bit tests: the
// other tests are the same jumps with the targets swapped.
func (p *program) jumpIf(cond bpf.JumpTest, val uint32, jt, jf string) {
	switch cond {
	case bpf.JumpNotEqual:
		cond, jt, jf = bpf.JumpEqual, jf, jt
	case bpf.JumpLessThan:
		cond, jt, jf = bpf.JumpGreaterOrEqual, jf, jt
	case bpf.JumpLessOrEqual:
		cond, jt, jf = bpf.JumpGreaterThan, jf, jt
	}
	p.fixups = append(p.fixups, fixup{at: len(p.insns), jt: jt, jf: jf})
	p.emit(bpf.JumpIf{Cond: cond, Val: val}.Assemble())
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

func (p *program) assemble() ([]bpf.RawInstruction, error) {
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
	for _, f := range p.fixups {
		in := &p.insns[f.at]
		if in.Op == opJa {
			n, err := skip(f.at, f.jt)
			if err != nil {
				return nil, err
			}
			in.K = uint32(n)
			continue
		}
		t, err := skip(f.at, f.jt)
		if err != nil {
			return nil, err
		}
		e, err := skip(f.at, f.jf)
		if err != nil {
			return nil, err
		}
		if t > 255 || e > 255 {
			return nil, fmt.Errorf("seccomp: internal error: conditional jump too far (%d, %d)", t, e)
		}
		in.Jt, in.Jf = uint8(t), uint8(e)
	}
	return p.insns, nil
}

// opJa is BPF_JMP|BPF_JA.
var opJa = func() uint16 {
	raw, _ := bpf.Jump{}.Assemble()
	return raw.Op
}()
