package spec

import (
	"fmt"
	"strconv"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/seccomp"
)

// SeccompUnconfined is the --security-opt seccomp value that turns the filter off.
const SeccompUnconfined = "unconfined"

// SecurityOptions are the parts of HostConfig.SecurityOpt the runtime acts on.
type SecurityOptions struct {
	NoNewPrivileges bool
	// Seccomp is "" for Docker's default profile, SeccompUnconfined, or a profile in Docker's JSON format
	// (the CLI sends the file's content, not its name).
	Seccomp string
}

// ParseSecurityOpt reads --security-opt values the way Docker's daemon does, with its error messages.
// label and apparmor options are accepted and have no effect: this host has neither LSM to apply.
func ParseSecurityOpt(opts []string, noNewPrivileges bool) (SecurityOptions, error) {
	out := SecurityOptions{NoNewPrivileges: noNewPrivileges}
	for _, opt := range opts {
		if opt == "no-new-privileges" {
			out.NoNewPrivileges = true
			continue
		}
		if opt == "disable" {
			continue // label=disable's old spelling
		}
		var k, v string
		ok := false
		if strings.Contains(opt, "=") {
			k, v, ok = strings.Cut(opt, "=")
		} else if strings.Contains(opt, ":") {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return out, errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt 1: %q", opt))
		}
		switch k {
		case "label", "apparmor":
		case "seccomp":
			out.Seccomp = v
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return out, errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt 2: %q", opt))
			}
			out.NoNewPrivileges = b
		default:
			return out, errdefs.InvalidParameter(fmt.Errorf("invalid --security-opt 2: %q", opt))
		}
	}
	return out, nil
}

// ValidateSecurity checks what a container create would only find out at start: the --security-opt
// values, the seccomp profile (it must decode and compile) and the capability names.
func ValidateSecurity(opts []string, privileged bool, capAdd, capDrop []string) error {
	sec, err := ParseSecurityOpt(opts, false)
	if err != nil {
		return err
	}
	// Docker names the list at fault.
	if _, err := capabilitySet(nil, capAdd, nil); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid CapAdd: %w", err))
	}
	if _, err := capabilitySet(nil, nil, capDrop); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid CapDrop: %w", err))
	}
	caps := DefaultCapabilities
	if !privileged {
		if caps, err = capabilitySet(DefaultCapabilities, capAdd, capDrop); err != nil {
			return err
		}
	}
	s := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	prof, err := seccompProfile(sec.Seccomp, privileged, s)
	if err != nil || prof == nil {
		return err
	}
	if _, err := seccomp.Prepare(prof); err != nil {
		return errdefs.InvalidParameter(err)
	}
	return nil
}

// seccompProfile is the OCI seccomp section for a container whose spec s already has its capabilities:
// Docker's default profile (whose rules depend on them), the user's, or none when unconfined or
// privileged.
func seccompProfile(opt string, privileged bool, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	if privileged || opt == SeccompUnconfined {
		return nil, nil
	}
	var (
		p   *specs.LinuxSeccomp
		err error
	)
	if opt == "" || opt == "builtin" {
		p, err = mobyseccomp.GetDefaultProfile(s)
	} else {
		p, err = mobyseccomp.LoadProfile(opt, s)
	}
	if err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	return p, nil
}
