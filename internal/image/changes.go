package image

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/berth-dev/berth/internal/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// applyChanges applies `import --change` instructions (Dockerfile syntax) to cfg.
func applyChanges(cfg *dockerspec.DockerOCIImageConfig, changes []string) error {
	for _, change := range changes {
		change = strings.TrimSpace(change)
		if change == "" {
			continue
		}
		instr, rest, _ := strings.Cut(change, " ")
		rest = strings.TrimSpace(rest)
		if err := applyChange(cfg, strings.ToUpper(instr), rest); err != nil {
			return errdefs.InvalidParameter(err)
		}
	}
	return nil
}

func applyChange(cfg *dockerspec.DockerOCIImageConfig, instr, rest string) error {
	switch instr {
	case "CMD":
		cfg.Cmd = execForm(rest)
	case "ENTRYPOINT":
		cfg.Entrypoint = execForm(rest)
	case "ENV":
		pairs, err := keyValues(instr, rest)
		if err != nil {
			return err
		}
		for _, kv := range pairs {
			cfg.Env = setEnv(cfg.Env, kv[0], kv[1])
		}
	case "LABEL":
		pairs, err := keyValues(instr, rest)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		words, err := splitWords(rest)
		if err != nil {
			return err
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, w := range words {
			ports, err := expandPort(w)
			if err != nil {
				return err
			}
			for _, p := range ports {
				cfg.ExposedPorts[p] = struct{}{}
			}
		}
	case "VOLUME":
		vols := jsonArray(rest)
		if vols == nil {
			var err error
			if vols, err = splitWords(rest); err != nil {
				return err
			}
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			if v = strings.TrimSpace(v); v == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "WORKDIR":
		if rest == "" {
			return fmt.Errorf("WORKDIR requires exactly one argument")
		}
		if !path.IsAbs(rest) {
			base := cfg.WorkingDir
			if base == "" {
				base = "/"
			}
			rest = path.Join(base, rest)
		}
		cfg.WorkingDir = path.Clean(rest)
	case "USER":
		if rest == "" {
			return fmt.Errorf("USER requires exactly one argument")
		}
		cfg.User = rest
	case "STOPSIGNAL":
		if rest == "" {
			return fmt.Errorf("STOPSIGNAL requires exactly one argument")
		}
		cfg.StopSignal = rest
	case "ONBUILD":
		cfg.OnBuild = append(cfg.OnBuild, rest)
	default:
		return fmt.Errorf("%s is not a valid change command", instr)
	}
	return nil
}

// execForm parses CMD/ENTRYPOINT arguments: a JSON array (exec form), else a shell command.
func execForm(rest string) []string {
	if a := jsonArray(rest); a != nil {
		return a
	}
	return []string{"/bin/sh", "-c", rest}
}

func jsonArray(s string) []string {
	if !strings.HasPrefix(s, "[") {
		return nil
	}
	var a []string
	if json.Unmarshal([]byte(s), &a) != nil {
		return nil
	}
	if a == nil {
		a = []string{}
	}
	return a
}

// keyValues parses `k=v k2="v 2"`, or the legacy single pair `k some value`.
func keyValues(instr, rest string) ([][2]string, error) {
	words, err := splitWords(rest)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("%s requires at least one argument", instr)
	}
	if !strings.Contains(words[0], "=") {
		// Legacy form: the first word is the name, everything after it the value.
		key, val, _ := strings.Cut(rest, " ")
		vals, err := splitWords(strings.TrimSpace(val))
		if err != nil {
			return nil, err
		}
		if len(vals) == 0 {
			return nil, fmt.Errorf("%s must have two arguments", instr)
		}
		return [][2]string{{key, strings.Join(vals, " ")}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: syntax error - can't find = in %q. Must be of the form: name=value", instr, w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on unquoted whitespace, removing quotes and backslash escapes as a shell would.
func splitWords(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quote  rune
	)
	runes := []rune(s)
	for i := 0; i < len(runes); i++ {
		c := runes[i]
		switch {
		case quote == 0 && unicode.IsSpace(c):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			continue
		case c == '\\' && quote != '\'' && i+1 < len(runes):
			i++
			cur.WriteRune(runes[i])
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case c == quote:
			quote = 0
		default:
			cur.WriteRune(c)
		}
		inWord = true
	}
	if quote != 0 {
		return nil, fmt.Errorf("unmatched quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func setEnv(env []string, key, val string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + val
			return env
		}
	}
	return append(env, key+"="+val)
}

// expandPort turns "80", "80/udp" or "8000-8002/tcp" into Docker's "port/proto" keys.
func expandPort(s string) ([]string, error) {
	ports, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto: %s", proto)
	}
	lo, hi, isRange := strings.Cut(ports, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid containerPort: %s", ports)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return nil, fmt.Errorf("invalid containerPort: %s", ports)
		}
	}
	var out []string
	for p := start; p <= end; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}
