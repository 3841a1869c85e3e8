package linux

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A spare is an init started before any container needs it: exec'd, Go runtime and package inits done,
// in fresh pid, uts and ipc namespaces, blocked on a unix socket (SOCK_SEQPACKET) to its Pool.
// The exchange on that socket, one packet each:
//
//	spare -> pool  spareReady             it is up; until then the pool does not offer it work
//	pool -> spare  job: flags, targets... with SCM_RIGHTS fds; fd i is dup2'ed onto targets[i]
//	               (0-2 the container's stdio, 3 the sync pipe, 4 the error pipe)
//	spare -> pool  spareAck               fds in place, parent-death signal off; the socket closes
//
// The spare starts with the socket as fd 3 and again as fd 4, placeholders for the job's pipes.
//
// After that the spare is exactly a cold init with its fds 0-4 set (InitMain goes on as for one), except
// that it unshares its mount namespace then rather than being cloned with one: a mount namespace cloned
// when the spare started would lack the container's rootfs, mounted since.
const (
	spareArg = "--spare"
	// spareSockFd is where the spare finds its socket when it starts (and, as a placeholder, at 4).
	spareSockFd = 3
	spareReady  = 'r'
	spareAck    = 'k'
	// jobCtty asks the spare to make its new stdin its controlling terminal.
	jobCtty = 1 << 0
	// maxJobFds bounds a job: stdin, stdout, stderr, sync pipe, error pipe.
	maxJobFds = 5
	// highFd is above every fd a job targets, so moving fds there never clobbers one.
	highFd = 100
)

// spareWait runs in the spare: it announces itself, waits for a job and puts the job's fds in place.
// An error (the pool closed the socket, a malformed job) means the spare exits without doing anything.
func spareWait() error {
	// The spare started with its socket as both fd 3 and fd 4: holding the numbers a job's pipes take
	// kept the Go runtime's own fds (epoll, the cgroup CPU limit files it rereads) above them, as in a
	// cold init. Talk over a copy out of the way; 3 and 4 are replaced by the job.
	sock, err := unix.FcntlInt(spareSockFd, unix.F_DUPFD_CLOEXEC, highFd)
	if err != nil {
		return err
	}
	defer unix.Close(sock)
	if err := closeInherited(sock); err != nil {
		return err
	}
	warmUp()
	if err := writeByte(sock, spareReady); err != nil {
		return err
	}

	buf := make([]byte, 1+maxJobFds)
	oob := make([]byte, unix.CmsgSpace(4*maxJobFds))
	var n, oobn, rflags int
	for {
		n, oobn, rflags, _, err = unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return errors.New("pool closed") // EOF: the pool is done with us
	}
	fds, err := parseRights(oob[:oobn])
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if err != nil {
		return err
	}
	if rflags&(unix.MSG_CTRUNC|unix.MSG_TRUNC) != 0 {
		return errors.New("job truncated")
	}
	flags, targets := buf[0], buf[1:n]
	if len(fds) != len(targets) {
		return fmt.Errorf("job has %d fds for %d targets", len(fds), len(targets))
	}
	// Received fds took the lowest free numbers, which may be targets: move them all up first.
	for i, fd := range fds {
		high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, highFd)
		if err != nil {
			return err
		}
		unix.Close(fd)
		fds[i] = high
	}
	for i, fd := range fds {
		if targets[i] >= maxJobFds {
			return fmt.Errorf("bad job target fd %d", targets[i])
		}
		// dup2 leaves the new fd without close-on-exec, as exec.Cmd leaves a cold init's.
		if err := unix.Dup2(fd, int(targets[i])); err != nil {
			return err
		}
	}
	if flags&jobCtty != 0 {
		if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 1); err != nil {
			return fmt.Errorf("set controlling terminal: %w", err)
		}
	}
	// From now on this is a container's init: it must outlive the monitor, like a cold one does.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0); err != nil {
		return err
	}
	return writeByte(sock, spareAck)
}

// closeInherited closes what the spare inherited beyond fds 0-4 (anything its parent had open without
// close-on-exec), so an idle spare keeps nothing of the monitor's open. Whatever this process opened
// itself has close-on-exec (the Go runtime and standard library always set it), which is how the two
// are told apart.
func closeInherited(keep int) error {
	ents, err := os.ReadDir("/proc/thread-self/fd")
	if err != nil {
		return fmt.Errorf("list fds: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < maxJobFds || fd == keep {
			continue
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
	return nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			return nil, err
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

func writeByte(fd int, b byte) error {
	for {
		_, err := unix.Write(fd, []byte{b})
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// warmUp does, while the spare idles, the one-time work a job would otherwise pay for: encoding/json
// computes the field tables of every struct type of the spec on first use, a few milliseconds in a
// fresh process. It touches nothing outside this process.
func warmUp() {
	i64, u64, mode := int64(1), uint64(1), os.FileMode(0o666)
	s := specs.Spec{
		Process: &specs.Process{
			User: specs.User{AdditionalGids: []uint32{1}}, Args: []string{"x"}, Env: []string{"A=b"},
			Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}},
			Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE"}}, OOMScoreAdj: new(int), ConsoleSize: &specs.Box{},
		},
		Root:   &specs.Root{Path: "/"},
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Options: []string{"nosuid"}}},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: true, Major: &i64}},
				Memory:  &specs.LinuxMemory{Limit: &i64}, CPU: &specs.LinuxCPU{Shares: &u64, Quota: &i64},
				Pids: &specs.LinuxPids{Limit: i64}, BlockIO: &specs.LinuxBlockIO{},
			},
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
			Devices:    []specs.LinuxDevice{{Path: "/dev/null", FileMode: &mode, UID: new(uint32), GID: new(uint32)}},
			Sysctl:     map[string]string{"a": "b"},
			Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Op: specs.OpEqualTo}}}}},
			MaskedPaths:   []string{"/x"},
			ReadonlyPaths: []string{"/y"},
		},
	}
	b, err := json.Marshal(&s)
	if err == nil {
		var back specs.Spec
		_ = json.Unmarshal(b, &back)
	}
	_, _ = capability.LastCap()
}
