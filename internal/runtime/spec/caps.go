package spec

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"

	"github.com/berth-dev/berth/internal/errdefs"
)

// knownCaps maps "CAP_CHOWN" style names to their numbers, for every capability the library knows.
func knownCaps() map[string]capability.Cap {
	m := make(map[string]capability.Cap)
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}

// normalizeCap accepts "chown", "CAP_CHOWN", "cap_chown" and "ALL".
func normalizeCap(name string) string {
	n := strings.ToUpper(strings.TrimSpace(name))
	if n == "ALL" || strings.HasPrefix(n, "CAP_") {
		return n
	}
	return "CAP_" + n
}

// HostCapabilities returns the names of the capabilities in this process's bounding set, which is what a
// privileged container may have: asking for a capability the host lacks would make the start fail.
func HostCapabilities() ([]string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mask uint64
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapBnd:"); ok {
			if mask, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				return nil, err
			}
			found = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("no CapBnd in /proc/self/status")
	}
	var out []string
	for _, c := range capability.ListKnown() {
		if mask&(1<<uint(c)) != 0 {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return out, nil
}

// capabilitySet applies --cap-add/--cap-drop to base the way Docker does: "ALL" in add starts from every
// host capability, "ALL" in drop starts from nothing; then drops are removed and adds added.
func capabilitySet(base, add, drop []string) ([]string, error) {
	known := knownCaps()
	check := func(list []string) ([]string, bool, error) {
		var out []string
		all := false
		for _, c := range list {
			n := normalizeCap(c)
			if n == "ALL" {
				all = true
				continue
			}
			if _, ok := known[n]; !ok {
				return nil, false, errdefs.InvalidParameter(fmt.Errorf("unknown capability: %q", n))
			}
			out = append(out, n)
		}
		return out, all, nil
	}
	adds, addAll, err := check(add)
	if err != nil {
		return nil, err
	}
	drops, dropAll, err := check(drop)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	switch {
	case addAll:
		host, err := HostCapabilities()
		if err != nil {
			return nil, errdefs.System(err)
		}
		for _, c := range host {
			set[c] = true
		}
	case !dropAll:
		for _, c := range base {
			set[c] = true
		}
	}
	for _, c := range drops {
		delete(set, c)
	}
	for _, c := range adds {
		set[c] = true
	}
	// Keep a stable order: the library's numbering.
	var out []string
	for _, c := range capability.ListKnown() {
		n := "CAP_" + strings.ToUpper(c.String())
		if set[n] {
			out = append(out, n)
		}
	}
	return out, nil
}
