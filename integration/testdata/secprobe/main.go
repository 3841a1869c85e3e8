// secprobe tries one privileged operation inside a container and says how it went: "ok" and exit 0 when
// it worked, the error and exit 1 when it did not. The security tests copy it into containers; as a
// static Go program it makes the raw system calls itself, whatever tools the image lacks.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: secprobe OP")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "mount":
		err = unix.Mount("tmpfs", "/tmp", "tmpfs", 0, "")
		if err == nil {
			_ = unix.Unmount("/tmp", 0)
		}
	case "unshare-user":
		// A child in a new user namespace: clone's namespace flags are what the profile filters (a Go
		// program cannot unshare a user namespace itself, it has threads).
		var pid int
		pid, err = syscall.ForkExec("/proc/self/exe", []string{"secprobe", "noop"}, &syscall.ProcAttr{
			Sys: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER},
		})
		if err == nil {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}
	case "noop":
	case "unshare-mnt":
		err = unix.Unshare(unix.CLONE_NEWNS)
	case "keyctl":
		// KEYCTL_JOIN_SESSION_KEYRING with a fresh name: needs no capability, only seccomp's leave.
		name, _ := unix.BytePtrFromString("secprobe")
		_, _, e := unix.Syscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, uintptr(unsafe.Pointer(name)), 0)
		if e != 0 {
			err = e
		}
	case "chown":
		f := "/tmp/secprobe-chown"
		if err = os.WriteFile(f, nil, 0o644); err == nil {
			err = os.Chown(f, 1234, 1234)
		}
	case "rawsock":
		var fd int
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_ICMP)
		if err == nil {
			unix.Close(fd)
		}
	case "sysctl":
		// kernel.domainname belongs to the UTS namespace: writable only if /proc/sys is.
		err = os.WriteFile("/proc/sys/kernel/domainname", []byte("secprobe\n"), 0)
	case "masked":
		// Reading the first of the masked /proc files this kernel has: masked, it is /dev/null (or an
		// empty directory) and reads nothing; unmasked it has content.
		err = readMasked()
	case "fds":
		err = listFds()
	case "hunt":
		err = hunt(os.Args[2:])
	default:
		err = fmt.Errorf("unknown op %q", os.Args[1])
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ok")
}

func readMasked() error {
	for _, p := range []string{"/proc/kcore", "/proc/timer_list", "/proc/sched_debug", "/proc/keys"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		b := make([]byte, 16)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		n, _ := f.Read(b)
		f.Close()
		if n == 0 {
			return fmt.Errorf("%s reads nothing", p)
		}
		return nil
	}
	return fmt.Errorf("no maskable /proc file on this kernel")
}

// listFds prints the descriptors this process inherited through execve (those without close-on-exec:
// everything the Go runtime opens for itself has it) and the working directory.
func listFds() error {
	names, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	var fds []int
	for _, n := range names {
		fd, _ := strconv.Atoi(n.Name())
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	for _, fd := range fds {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", strconv.Itoa(fd)))
		fmt.Printf("fd %d %s\n", fd, target)
	}
	// getcwd says "(unreachable)" (Go: an error) for a directory outside the process's root.
	cwd, err := syscall.Getwd()
	if err != nil {
		cwd = "UNREACHABLE " + err.Error()
	}
	fmt.Println("cwd", cwd)
	return nil
}

// hunt watches for a process whose executable is none of the container's files (the runtime's helper,
// or the runtime binary run through "#!/proc/self/exe"), stops it, and reports what its exe gives: the
// mount's read-only flag, and what opening it for writing does. It waits up to args[0] seconds.
func hunt(args []string) error {
	limit := 30 * time.Second
	if len(args) > 0 {
		if s, err := strconv.Atoi(args[0]); err == nil {
			limit = time.Duration(s) * time.Second
		}
	}
	known := map[[2]uint64]bool{}
	for _, p := range []string{"/proc/self/exe", "/bin/busybox", "/bin/sh"} {
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil {
			known[[2]uint64{st.Dev, st.Ino}] = true
		}
	}
	self := os.Getpid()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return err
		}
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self || pid == 1 {
				continue
			}
			exe := fmt.Sprintf("/proc/%d/exe", pid)
			fd, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
			if err != nil {
				continue // gone, or not ours to look at (a helper still holding all capabilities)
			}
			var st unix.Stat_t
			if unix.Fstat(fd, &st) != nil || known[[2]uint64{st.Dev, st.Ino}] {
				unix.Close(fd)
				continue
			}
			_ = unix.Kill(pid, unix.SIGSTOP)
			r := report(fd, pid)
			_ = unix.Kill(pid, unix.SIGCONT)
			unix.Close(fd)
			b, _ := json.Marshal(r)
			fmt.Println(string(b))
			return nil
		}
	}
	return fmt.Errorf("no foreign process seen in %s", limit)
}

type huntReport struct {
	Pid      int    `json:"pid"`
	Link     string `json:"link"`
	ReadOnly bool   `json:"readOnly"`
	Size     int64  `json:"size"`
	Reopen   string `json:"reopen"` // what opening the exe for writing through /proc/self/fd gave
	Direct   string `json:"direct"` // what opening /proc/<pid>/exe for writing gave
}

func report(fd, pid int) huntReport {
	r := huntReport{Pid: pid}
	r.Link, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	var sfs unix.Statfs_t
	if unix.Fstatfs(fd, &sfs) == nil {
		r.ReadOnly = sfs.Flags&unix.ST_RDONLY != 0
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		r.Size = st.Size
	}
	try := func(p string) string {
		w, err := unix.Open(p, unix.O_WRONLY|unix.O_APPEND|unix.O_CLOEXEC, 0)
		if err != nil {
			return errName(err)
		}
		defer unix.Close(w)
		// Opened: append nothing harmful, and say so. The test compares the host file's hash.
		if _, err := unix.Write(w, bytes.Repeat([]byte{0}, 1)); err != nil {
			return "opened, write " + errName(err)
		}
		return "WRITTEN"
	}
	r.Reopen = try(fmt.Sprintf("/proc/self/fd/%d", fd))
	r.Direct = try(fmt.Sprintf("/proc/%d/exe", pid))
	return r
}

func errName(err error) string {
	if e, ok := err.(syscall.Errno); ok {
		switch e {
		case unix.EROFS:
			return "EROFS"
		case unix.ETXTBSY:
			return "ETXTBSY"
		case unix.EACCES:
			return "EACCES"
		case unix.EPERM:
			return "EPERM"
		case unix.ENOENT:
			return "ENOENT"
		}
	}
	return err.Error()
}
