package cli

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/mount"
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

// mountList is --mount: docker's CSV syntax (type=bind,source=/a,target=/b,readonly), parsed with its
// keys, defaults and messages.
type mountList []mount.Mount

func (m *mountList) String() string { return "" }
func (m *mountList) Type() string   { return "mount" }

func (m *mountList) Set(value string) error {
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return err
	}
	mt := mount.Mount{Type: mount.TypeVolume}
	bind := func() *mount.BindOptions {
		if mt.BindOptions == nil {
			mt.BindOptions = &mount.BindOptions{}
		}
		return mt.BindOptions
	}
	vol := func() *mount.VolumeOptions {
		if mt.VolumeOptions == nil {
			mt.VolumeOptions = &mount.VolumeOptions{}
		}
		return mt.VolumeOptions
	}
	tmpfs := func() *mount.TmpfsOptions {
		if mt.TmpfsOptions == nil {
			mt.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return mt.TmpfsOptions
	}
	parseBool := func(key, val string) (bool, error) {
		b, err := strconv.ParseBool(val)
		if err != nil {
			return false, fmt.Errorf("invalid value for %s: %s", key, val)
		}
		return b, nil
	}
	for _, field := range fields {
		key, val, ok := strings.Cut(field, "=")
		key = strings.ToLower(key)
		if !ok {
			switch key {
			case "readonly", "ro":
				mt.ReadOnly = true
				continue
			case "volume-nocopy":
				vol().NoCopy = true
				continue
			case "bind-nonrecursive":
				bind().NonRecursive = true
				continue
			}
			return fmt.Errorf("invalid field '%s' must be a key=value pair", field)
		}
		switch key {
		case "type":
			mt.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			mt.Source = val
			if val == "." || strings.HasPrefix(val, "./") {
				if mt.Source, err = filepath.Abs(val); err != nil {
					return err
				}
			}
		case "target", "dst", "destination":
			mt.Target = val
		case "readonly", "ro":
			if mt.ReadOnly, err = parseBool(key, val); err != nil {
				return err
			}
		case "consistency":
			mt.Consistency = mount.Consistency(strings.ToLower(val))
		case "bind-propagation":
			bind().Propagation = mount.Propagation(strings.ToLower(val))
		case "bind-nonrecursive":
			if bind().NonRecursive, err = parseBool(key, val); err != nil {
				return err
			}
		case "volume-nocopy":
			if vol().NoCopy, err = parseBool(key, val); err != nil {
				return err
			}
		case "volume-label":
			k, v, _ := strings.Cut(val, "=")
			if vol().Labels == nil {
				vol().Labels = map[string]string{}
			}
			vol().Labels[k] = v
		case "volume-driver":
			if vol().DriverConfig == nil {
				vol().DriverConfig = &mount.Driver{}
			}
			vol().DriverConfig.Name = val
		case "volume-opt":
			k, v, ok := strings.Cut(val, "=")
			if !ok {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			if vol().DriverConfig == nil {
				vol().DriverConfig = &mount.Driver{}
			}
			if vol().DriverConfig.Options == nil {
				vol().DriverConfig.Options = map[string]string{}
			}
			vol().DriverConfig.Options[k] = v
		case "volume-subpath":
			vol().Subpath = val
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfs().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfs().Mode = os.FileMode(n)
		default:
			return fmt.Errorf("unexpected key '%s' in '%s'", key, field)
		}
	}
	if mt.Target == "" {
		return errors.New("target is required")
	}
	if mt.VolumeOptions != nil && mt.Type != mount.TypeVolume {
		return fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", mt.Type)
	}
	if mt.BindOptions != nil && mt.Type != mount.TypeBind {
		return fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", mt.Type)
	}
	if mt.TmpfsOptions != nil && mt.Type != mount.TypeTmpfs {
		return fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", mt.Type)
	}
	*m = append(*m, mt)
	return nil
}
