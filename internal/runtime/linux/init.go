package linux

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func init() {
	// Keep main on the process's first thread: the namespaces it unshares or joins, the credentials and
	// capabilities it sets are per thread, and the thread that calls execve is the one that counts.
	if len(os.Args) > 0 && os.Args[0] == InitArg0 {
		runtime.LockOSThread()
	}
}

// Fds the init inherits from Spawn (ExtraFiles start at 3).
const (
	syncFd = 3
	errFd  = 4
)

// InitMain is the container init: main calls it first when os.Args[0] == InitArg0. It never returns:
// it either execs the container's entrypoint or reports why not on the error pipe and exits.
func InitMain() {
	runtime.LockOSThread()
	warm := len(os.Args) > 1 && os.Args[1] == spareArg
	if warm {
		// A spare: wait for a container's job, which leaves fds 0-4 exactly as a cold start has them.
		if err := spareWait(); err != nil {
			os.Exit(1)
		}
	}
	unix.CloseOnExec(errFd)
	errPipe := os.NewFile(errFd, "error-pipe")
	syncPipe := os.NewFile(syncFd, "sync-pipe")

	var s specs.Spec
	if err := json.NewDecoder(syncPipe).Decode(&s); err != nil {
		// Spawn gave up on us (cgroup failure, cancelled start) and closed the pipe: nothing to report.
		os.Exit(1)
	}
	syncPipe.Close()

	if warm {
		// The spare shares the monitor's mount namespace until now, so its copy includes the rootfs
		// and volumes mounted for this container since the spare started. unshare only affects this
		// thread (it gets its own fs_struct), which is the one that sets up and execs.
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			reportAndExit(errPipe, kindSystem, fmt.Errorf("unshare mount namespace: %w", err))
		}
		// A spare lives in the host's network namespace (see warmFlags); a container asking for a new
		// one gets it now, on this thread, like the mount namespace.
		if newNamespace(&s, specs.NetworkNamespace) {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				reportAndExit(errPipe, kindSystem, fmt.Errorf("unshare network namespace: %w", err))
			}
		}
	}
	if err := setupContainer(&s); err != nil {
		reportAndExit(errPipe, kindSystem, err)
	}
	kind, err := finalizeAndExec(&s)
	reportAndExit(errPipe, kind, err)
}

// setupContainer does everything that needs full root: namespaces, filesystem, hostname, limits.
func setupContainer(s *specs.Spec) error {
	unix.Umask(0)
	defer unix.Umask(0o022)
	if err := joinNamespaces(s); err != nil {
		return err
	}
	if hasNamespace(s, specs.CgroupNamespace) {
		// After Spawn moved us into our cgroup, so the namespace's root is the container's own cgroup.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if newNamespace(s, specs.NetworkNamespace) {
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("bring up lo: %w", err)
		}
	}
	if err := setupRootfs(s); err != nil {
		return err
	}
	if s.Hostname != "" && newNamespace(s, specs.UTSNamespace) {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if s.Process.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(fmt.Sprint(*s.Process.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj: %w", err)
		}
	}
	return setRlimits(s.Process.Rlimits)
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// newNamespace reports whether the container gets a fresh namespace of type t (not one joined by path).
func newNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return ns.Path == ""
		}
	}
	return false
}

var setnsFlag = map[specs.LinuxNamespaceType]int{
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
}

// joinNamespaces setns's into namespaces given by path. These are per-thread namespaces, joined by the
// thread that will exec; mount, pid and user namespaces cannot be joined this way by a Go program.
func joinNamespaces(s *specs.Spec) error {
	for _, ns := range s.Linux.Namespaces {
		if ns.Path == "" {
			continue
		}
		flag, ok := setnsFlag[ns.Type]
		if !ok {
			return fmt.Errorf("joining a %s namespace by path is not supported", ns.Type)
		}
		fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s namespace: %w", ns.Type, err)
		}
		if inNamespace(fd, ns.Type) {
			// Joined before the init was cloned (see startInJoinedNamespaces).
			unix.Close(fd)
			continue
		}
		err = unix.Setns(fd, flag)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("join %s namespace %s: %w", ns.Type, ns.Path, err)
		}
	}
	return nil
}

var procNsName = map[specs.LinuxNamespaceType]string{
	specs.NetworkNamespace: "net", specs.UTSNamespace: "uts", specs.IPCNamespace: "ipc", specs.CgroupNamespace: "cgroup",
}

// inNamespace reports whether this thread already is in the namespace fd refers to.
func inNamespace(fd int, t specs.LinuxNamespaceType) bool {
	var a, b unix.Stat_t
	if unix.Fstat(fd, &a) != nil || unix.Stat("/proc/thread-self/ns/"+procNsName[t], &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

var rlimitType = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

func setRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		t, ok := rlimitType[l.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", l.Type)
		}
		// syscall.Setrlimit, not unix's: it tells the Go runtime not to restore its own NOFILE at exec.
		if err := setrlimit(t, l.Soft, l.Hard); err != nil {
			return fmt.Errorf("set %s to %d:%d: %w", l.Type, l.Soft, l.Hard, err)
		}
	}
	return nil
}
