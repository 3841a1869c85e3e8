package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ptySession runs a command on a real pseudo-terminal, as a user at a terminal would: the command is a
// session leader with the terminal as its controlling tty and stdio.
type ptySession struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	read   chan struct{} // closed when the master reads EOF/EIO
	done   chan struct{}
	code   int
}

// startPty runs cmd on a new terminal of rows x cols.
func startPty(t *testing.T, cmd *exec.Cmd, rows, cols uint16) *ptySession {
	t.Helper()
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &ptySession{t: t, master: os.NewFile(uintptr(mfd), "ptmx"), cmd: cmd, read: make(chan struct{}), done: make(chan struct{})}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := s.master.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				close(s.read)
				return
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); ok {
			s.code = ee.ExitCode()
		} else if err != nil {
			s.code = -1
		}
		close(s.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
		s.master.Close()
	})
	return s
}

func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// expect waits until the output (from offset from on) contains want and returns the offset after it.
func (s *ptySession) expect(from int, want string) int {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := s.output()
		if i := strings.Index(out[min(from, len(out)):], want); i >= 0 {
			return from + i + len(want)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %q; terminal so far: %q", want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *ptySession) send(in string) {
	s.t.Helper()
	if _, err := s.master.Write([]byte(in)); err != nil {
		s.t.Fatal(err)
	}
}

func (s *ptySession) resize(rows, cols uint16) {
	s.t.Helper()
	if err := unix.IoctlSetWinsize(int(s.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		s.t.Fatal(err)
	}
}

// wait waits for the command to exit and returns its exit code.
func (s *ptySession) wait() int {
	s.t.Helper()
	select {
	case <-s.done:
		return s.code
	case <-time.After(30 * time.Second):
		s.t.Fatalf("command did not exit; terminal: %q", s.output())
		return -1
	}
}
