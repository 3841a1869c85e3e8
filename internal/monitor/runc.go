package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RuncLauncher runs containers with an OCI runtime binary (runc, crun) in the foreground:
// `<Path> --root <Root> run --bundle <bundle> <id>`, its stdio passed straight through to the container.
// The runtime process stays the container's parent, forwards signals, removes the container (and its
// cgroup) when it ends, and exits with the container's exit code.
type RuncLauncher struct {
	// Path is the runtime binary, a path or a name looked up in $PATH.
	Path string
	// Root is the runtime's state directory (--root), <exec-root>/runc so state stays under our exec root.
	Root string
}

// runcStartPoll is how often Launch looks for the container to have started: runc has no "started" signal
// for a foreground run, so we watch its pid file (written at create) and its exec fifo (removed by start).
const runcStartPoll = 2 * time.Millisecond

// runcExecWait bounds the wait for init to exec the entrypoint once started, in case a runtime names its
// init process differently than runc does.
const runcExecWait = 5 * time.Second

// Launch starts the container and returns once its process has been started (runc's exec fifo is gone).
// The runtime parameter is ignored: l.Path names the binary. A start failure is returned with the
// runtime's own error message.
func (l RuncLauncher) Launch(ctx context.Context, id, bundle, _ string, stdio Stdio) (Proc, error) {
	if err := os.MkdirAll(l.Root, 0o700); err != nil {
		return nil, err
	}
	// Beside the runtime's per-container state directories: `runc list` ignores plain files.
	pidFile := filepath.Join(l.Root, id+".pid")
	logFile := filepath.Join(l.Root, id+".log")
	os.Remove(pidFile)
	os.Remove(logFile)

	cmd := exec.Command(l.Path, "--root", l.Root, "--log", logFile, "--log-format", "json",
		"run", "--bundle", bundle, "--pid-file", pidFile, id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &runcProc{cmd: cmd, pidFile: pidFile, logFile: logFile, done: make(chan struct{})}
	go p.waitRuntime()

	fifo := filepath.Join(l.Root, id, "exec.fifo")
	begin := time.Now()
	tick := time.NewTicker(runcStartPoll)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			// The runtime ended before we saw the start: either the container already ran to completion,
			// or it never started and the runtime logged why.
			if msg := runtimeError(logFile); msg != "" {
				p.cleanup()
				return nil, errors.New(msg)
			}
			if p.initPid = readPid(pidFile); p.initPid == 0 {
				p.cleanup()
				return nil, fmt.Errorf("%s exited with code %d before starting the container", l.Path, p.status.Code)
			}
			return p, nil
		case <-ctx.Done():
			if pid := readPid(pidFile); pid > 0 {
				unix.Kill(pid, unix.SIGKILL)
			}
			cmd.Process.Kill()
			<-p.done
			p.cleanup()
			return nil, ctx.Err()
		case <-tick.C:
			pid := readPid(pidFile)
			if pid == 0 {
				continue
			}
			if _, err := os.Stat(fifo); err == nil {
				continue // created, not started yet
			}
			// Started: the fifo is gone once init is released to exec the entrypoint, which takes a moment
			// more. Until then init still runs as "<runtime> init".
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil &&
				(len(b) == 0 || string(b) == l.Path+"\x00init\x00") && time.Since(begin) < runcExecWait {
				continue
			}
			p.initPid = pid
			return p, nil
		}
	}
}

type runcProc struct {
	cmd              *exec.Cmd
	pidFile, logFile string
	initPid          int
	done             chan struct{}
	status           ExitStatus
	err              error
	cleanOnce        sync.Once
}

func (p *runcProc) waitRuntime() {
	err := p.cmd.Wait()
	if p.cmd.ProcessState != nil {
		p.status = ExitStatusOf(p.cmd.ProcessState)
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && !ws.Signaled() {
			// The runtime passes the container's fate on as 128+signal; that is the exit code Docker shows.
			p.status.Signal = 0
		}
	} else {
		p.status, p.err = ExitStatus{Code: -1}, err
	}
	close(p.done)
}

func (p *runcProc) Pid() int { return p.initPid }

// HelperPid is the runtime process, the monitor's child.
func (p *runcProc) HelperPid() int { return p.cmd.Process.Pid }

// Wait waits for the runtime. If the runtime itself was killed, the container's init was orphaned to us
// (the monitor is a subreaper) and is still running: wait for it instead.
func (p *runcProc) Wait() (ExitStatus, error) {
	<-p.done
	defer p.cleanup()
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if p.err != nil || !ok || !ws.Signaled() || p.initPid <= 0 {
		return p.status, p.err
	}
	for {
		var st unix.WaitStatus
		_, err := unix.Wait4(p.initPid, &st, 0, nil)
		switch {
		case err == nil:
			return exitStatusFromWait(syscall.WaitStatus(st)), nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			// Not (yet) reparented to us, or reaped elsewhere: watch it until it is gone.
			if unix.Kill(p.initPid, 0) != nil {
				return p.status, nil
			}
			time.Sleep(100 * time.Millisecond)
		default:
			return p.status, err
		}
	}
}

func (p *runcProc) cleanup() {
	p.cleanOnce.Do(func() {
		os.Remove(p.pidFile)
		os.Remove(p.logFile)
	})
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// runtimeError returns the last error the runtime wrote to its JSON log, or "".
func runtimeError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var msg string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			msg = e.Msg
		}
	}
	return msg
}
