// Package reaper is the minimal init that `run --init` puts in front of a container's command, as
// Docker does with tini: PID 1 of the container runs the command as its child, passes every signal on to
// it, reaps every zombie that is reparented to it, and exits with the command's status (128+n when a
// signal n ended it). Programs that were never written to be PID 1 then get default signal behaviour
// and do not fill the process table with zombies.
package reaper

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Path is where the binary is bind-mounted in the container, and its argv[0] there: Docker's.
const Path = "/sbin/docker-init"

// Main runs the reaper over args ("--" first, as Docker passes them, is skipped) and never returns.
func Main(args []string) {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "docker-init: no command given")
		os.Exit(1)
	}
	os.Exit(run(args))
}

func run(args []string) int {
	// Catch everything first, so no signal sent between the fork and the loop below is lost.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: %v\n", err)
		return 127
	}
	attr := &os.ProcAttr{Env: os.Environ(), Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}}
	var child *os.Process
	if isTerminal(0) {
		// On a terminal the command gets a process group of its own in the foreground, so the keys
		// that send signals (^C, ^Z) reach it, as they would without an init in between.
		attr.Sys = &syscall.SysProcAttr{Setpgid: true, Foreground: true, Ctty: 0}
		child, err = os.StartProcess(path, args, attr)
		if err != nil {
			attr.Sys = nil // not our controlling terminal after all
		}
	}
	if child == nil {
		child, err = os.StartProcess(path, args, attr)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: %v\n", err)
		if os.IsPermission(err) {
			return 126
		}
		return 127
	}
	pid := child.Pid
	for sig := range sigs {
		switch s := sig.(syscall.Signal); s {
		case syscall.SIGCHLD:
		case syscall.SIGURG:
			// The Go runtime's own preemption signal, not one sent to the container.
		default:
			_ = unix.Kill(pid, s)
		}
		// Reap on every wake-up: a full channel drops signals, SIGCHLD among them.
		if code, done := reap(pid); done {
			return code
		}
	}
	return 1
}

// reap collects every exited child; done reports that the command itself was among them.
func reap(cmd int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid == cmd {
			done = true
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			} else {
				code = ws.ExitStatus()
			}
		}
	}
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
