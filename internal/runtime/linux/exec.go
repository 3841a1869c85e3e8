package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/runtime/seccomp"
)

// finalizeAndExec drops to the container's user and capabilities and execs its entrypoint. It only
// returns on failure, with the error kind to report.
func finalizeAndExec(s *specs.Spec) (string, error) {
	p := s.Process
	caps, err := capabilitiesFor(p.Capabilities)
	if err != nil {
		return kindSystem, err
	}
	var filter *seccomp.Filter
	if s.Linux != nil && s.Linux.Seccomp != nil {
		if filter, err = seccomp.Prepare(s.Linux.Seccomp); err != nil {
			return kindSystem, err
		}
	}
	// Loading a filter needs no_new_privs or CAP_SYS_ADMIN. With no_new_privs it is loaded last, right
	// before execve, so it constrains nothing of ours. Without, it must be loaded while we are still
	// root with every capability, as runc does: the rest of this function then runs under it, which
	// any usable profile allows (setresuid, capset, prctl, chdir, stat, close_range, execve).
	loadEarly := filter != nil && !p.NoNewPrivileges
	// The bounding set can only be lowered while we still have CAP_SETPCAP, i.e. before leaving root.
	if err := caps.Apply(capability.BOUNDS); err != nil {
		return kindSystem, fmt.Errorf("drop bounding capabilities: %w", err)
	}
	if err := ensureCwd(p.Cwd, p.User); err != nil {
		return kindSystem, err
	}
	// KEEPCAPS keeps the permitted set across the uid change, so the capset below can still grant
	// capabilities to a non-root user.
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return kindSystem, fmt.Errorf("set keepcaps: %w", err)
	}
	if loadEarly {
		if err := filter.Load(); err != nil {
			return kindSystem, err
		}
	}
	if err := setCredentials(p.User); err != nil {
		return kindSystem, err
	}
	if err := caps.Apply(capability.CAPS | capability.AMBS); err != nil {
		return kindSystem, fmt.Errorf("set capabilities: %w", err)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return kindSystem, fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		return kindSystem, fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", p.Cwd, err)
	}
	path, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return kindExec, err
	}
	// Only 0, 1 and 2 may reach the container: everything else, including fds the daemon inherited
	// without close-on-exec and the error pipe, closes at execve.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		if err := cloexecAll(); err != nil {
			return kindSystem, err
		}
	}
	if filter != nil && !loadEarly {
		if err := filter.Load(); err != nil {
			return kindSystem, err
		}
	}
	err = syscall.Exec(path, p.Args, p.Env)
	return kindExec, fmt.Errorf("exec: %q: %w", p.Args[0], errnoOnly(err))
}

// errnoOnly keeps Docker's wording: "permission denied", not "exec: permission denied".
func errnoOnly(err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

func capabilitiesFor(c *specs.LinuxCapabilities) (capability.Capabilities, error) {
	caps, err := capability.NewPid2(0)
	if err != nil {
		return nil, err
	}
	caps.Clear(capability.CAPS | capability.BOUNDS | capability.AMBS)
	if c == nil {
		return caps, nil
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, err
	}
	byName := map[string]capability.Cap{}
	for _, k := range capability.ListKnown() {
		if k <= last {
			byName["CAP_"+strings.ToUpper(k.String())] = k
		}
	}
	set := func(which capability.CapType, names []string) {
		for _, n := range names {
			// A capability this kernel does not know cannot be granted; asking for it is not an error
			// (the same spec must run on older kernels).
			if k, ok := byName[strings.ToUpper(n)]; ok {
				caps.Set(which, k)
			}
		}
	}
	set(capability.BOUNDING, c.Bounding)
	set(capability.EFFECTIVE, c.Effective)
	set(capability.PERMITTED, c.Permitted)
	set(capability.INHERITABLE, c.Inheritable)
	set(capability.AMBIENT, c.Ambient)
	return caps, nil
}

// setCredentials switches this thread (and so the exec'd program) to the container's user with raw
// syscalls: Go's syscall.Setresuid would change every thread, which is pointless work here.
func setCredentials(u specs.User) error {
	groups := u.AdditionalGids
	var ptr unsafe.Pointer
	if len(groups) > 0 {
		ptr = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(ptr), 0); e != 0 {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setresgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setresuid %d: %w", u.UID, e)
	}
	return nil
}

// ensureCwd creates a missing working directory owned by the container's user, as Docker does for
// WORKDIR, so a fresh image's workdir is usable by a non-root user.
func ensureCwd(cwd string, u specs.User) error {
	if _, err := os.Stat(cwd); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("create cwd %q: %w", cwd, err)
	}
	return os.Chown(cwd, int(u.UID), int(u.GID))
}

// lookPath finds argv0 the way execvp would, but in the container's PATH, with the error texts Docker's
// CLI keys its exit codes on.
func lookPath(argv0 string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		if _, err := os.Stat(argv0); err != nil {
			return "", fmt.Errorf("exec: %q: %w", argv0, err)
		}
		return argv0, nil
	}
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	var denied string
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, argv0)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		if unix.Access(p, unix.X_OK) == nil {
			return p, nil
		}
		if denied == "" {
			denied = p
		}
	}
	if denied != "" {
		// Like execvp: a match that cannot be executed is reported as such, not as missing.
		return denied, nil
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", argv0)
}

// cloexecAll marks every fd above 2 close-on-exec, for kernels without close_range (before 5.11).
func cloexecAll() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list fds: %w", err)
	}
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}
