package cli

import (
	"fmt"
	"math/big"
	"strconv"

	units "github.com/docker/go-units"
)

// memBytes is a size flag (-m 512m). Set's error text becomes pflag's
// `invalid argument "12x" for "-m, --memory" flag: ...`, which is what docker prints.
type memBytes int64

func (m *memBytes) String() string {
	if *m == 0 {
		return "0"
	}
	return units.BytesSize(float64(*m))
}

func (m *memBytes) Set(v string) error {
	n, err := units.RAMInBytes(v)
	*m = memBytes(n)
	return err
}

func (m *memBytes) Type() string { return "bytes" }

// memSwapBytes is a size that also accepts -1 ("unlimited swap").
type memSwapBytes int64

func (m *memSwapBytes) String() string {
	if *m == -1 {
		return "-1"
	}
	return (*memBytes)(m).String()
}

func (m *memSwapBytes) Set(v string) error {
	if v == "-1" {
		*m = -1
		return nil
	}
	return (*memBytes)(m).Set(v)
}

func (m *memSwapBytes) Type() string { return "bytes" }

// nanoCPUs is --cpus: a decimal number of CPUs stored as billionths, parsed exactly (1.5 -> 1500000000).
type nanoCPUs int64

func (n *nanoCPUs) String() string {
	if *n == 0 {
		return ""
	}
	return big.NewRat(int64(*n), 1e9).FloatString(3)
}

func (n *nanoCPUs) Set(v string) error {
	r, ok := new(big.Rat).SetString(v)
	if !ok {
		return fmt.Errorf("failed to parse %v as a rational number", v)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return fmt.Errorf("value is too precise")
	}
	if nano.Sign() < 0 {
		return fmt.Errorf("value must be positive")
	}
	*n = nanoCPUs(nano.Num().Int64())
	return nil
}

func (n *nanoCPUs) Type() string { return "decimal" }

// ulimitList is a repeatable --ulimit name=soft[:hard].
type ulimitList []*units.Ulimit

func (u *ulimitList) String() string {
	s := "["
	for i, l := range *u {
		if i > 0 {
			s += " "
		}
		s += l.String()
	}
	return s + "]"
}

func (u *ulimitList) Set(v string) error {
	l, err := units.ParseUlimit(v)
	if err != nil {
		return err
	}
	*u = append(*u, l)
	return nil
}

func (u *ulimitList) Type() string { return "ulimit" }

// optionalInt is an int flag whose absence must stay distinguishable from 0 (--stop-timeout, --pids-limit).
type optionalInt struct {
	v   int64
	set bool
}

func (o *optionalInt) String() string {
	if !o.set {
		return ""
	}
	return strconv.FormatInt(o.v, 10)
}

func (o *optionalInt) Set(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return err
	}
	o.v, o.set = n, true
	return nil
}

func (o *optionalInt) Type() string { return "int" }
