package integration

import (
	"strings"
	"testing"
	"time"
)

// TestTTYRunInteractive types into `docker run -it busybox sh` on a real terminal: the shell's terminal
// is the container's /dev/pts/0, sized like ours at start and after a resize, and its exit code comes back.
func TestTTYRunInteractive(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	s := startPty(t, dockerCmd("run", "-it", "--name", name, busybox, "sh"), 33, 101)
	at := s.expect(0, "# ")
	s.send("tty\r")
	at = s.expect(at, "/dev/pts/0\r\n")
	s.send("stty size\r")
	at = s.expect(at, "33 101\r\n")
	s.send("echo $((6*7))\r")
	at = s.expect(at, "42\r\n")
	// SIGWINCH reaches the CLI, which resizes the container's terminal.
	s.resize(40, 120)
	// The shell may redraw what we type (it queries the cursor position), so look for the answer only.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.output()[at:], "S40 120E") {
		if time.Now().After(deadline) {
			t.Fatalf("size not updated after resize: %q", s.output())
		}
		s.send("echo S$(stty size)E\r")
		time.Sleep(300 * time.Millisecond)
	}
	s.send("exit 3\r")
	if code := s.wait(); code != 3 {
		t.Fatalf("exit code %d, terminal: %q", code, s.output())
	}
	if got := mustDocker(t, "inspect", "-f", "{{.Config.Tty}} {{.State.ExitCode}}", name); got != "true 3" {
		t.Fatalf("inspect: %q", got)
	}
	// A TTY's output is logged as one raw stream.
	if r := docker(t, "logs", name); !strings.Contains(r.stdout, "33 101\r\n") || strings.Contains(r.stdout, "\x00") || r.code != 0 {
		t.Fatalf("logs: %s", r)
	}
}

// TestTTYDetachKeys detaches from `docker run -it` with ctrl-p ctrl-q (and a custom sequence): the CLI
// exits 0 and the container keeps running.
func TestTTYDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		keys string
	}{
		{"default", nil, "\x10\x11"},
		{"custom", []string{"--detach-keys", "ctrl-x,x"}, "\x18x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := uniqueName(t)
			rmOnCleanup(t, name)
			args := append(append([]string{"run", "-it", "--name", name}, tc.args...), busybox, "sh")
			s := startPty(t, dockerCmd(args...), 24, 80)
			s.expect(0, "# ")
			s.send(tc.keys)
			if code := s.wait(); code != 0 {
				t.Fatalf("exit code %d after detach: %q", code, s.output())
			}
			if got := mustDocker(t, "inspect", "-f", "{{.State.Running}}", name); got != "true" {
				t.Fatalf("container not running after detach: %s", got)
			}
			// And it still answers: the session ended, not the shell.
			if got := mustDocker(t, "exec", name, "echo", "alive"); got != "alive" {
				t.Fatalf("exec after detach: %q", got)
			}
		})
	}
}

// TestTTYAttach attaches to a running TTY container and detaches again.
func TestTTYAttach(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	mustDocker(t, "run", "-dit", "--name", name, busybox, "sh")
	s := startPty(t, dockerCmd("attach", name), 24, 80)
	time.Sleep(300 * time.Millisecond) // the attach is in place
	s.send("echo at$((1+1))ached\r")
	s.expect(0, "at2ached")
	s.send("\x10\x11")
	// The docker CLI's attach says "read escape sequence" and exits 1 here, as it does with dockerd.
	s.expect(0, "read escape sequence")
	s.wait()
	if got := mustDocker(t, "inspect", "-f", "{{.State.Running}}", name); got != "true" {
		t.Fatalf("not running after detach: %s", got)
	}
}

// TestPipedStdinWithoutTTY checks stdin EOF semantics without a terminal.
func TestPipedStdinWithoutTTY(t *testing.T) {
	r := runCmd(t, dockerCmd("run", "--rm", "-i", busybox, "cat"), "hi\n")
	if r.code != 0 || r.stdout != "hi\n" {
		t.Fatalf("%s", r)
	}
}

// TestBerthCLITTY drives berth's own CLI on a real terminal: run -it, resize at start, detach keys, and
// exec -it into the same container.
func TestBerthCLITTY(t *testing.T) {
	name := uniqueName(t)
	rmOnCleanup(t, name)
	s := startPty(t, berthCmd("run", "-it", "--name", name, busybox, "sh"), 31, 97)
	at := s.expect(0, "# ")
	s.send("tty; stty size\r")
	s.expect(at, "/dev/pts/0\r\n31 97\r\n")
	s.send("\x10\x11")
	if code := s.wait(); code != 0 {
		t.Fatalf("berth run -it exit %d after detach: %q", code, s.output())
	}
	if got := mustDocker(t, "inspect", "-f", "{{.State.Running}}", name); got != "true" {
		t.Fatalf("not running after detach: %s", got)
	}
	x := startPty(t, berthCmd("exec", "-it", name, "sh"), 22, 77)
	at = x.expect(0, "# ")
	x.send("stty size; exit 6\r")
	x.expect(at, "22 77\r\n")
	if code := x.wait(); code != 6 {
		t.Fatalf("berth exec -it exit %d: %q", code, x.output())
	}
}

// TestBerthCLIExec runs berth exec without a terminal.
func TestBerthCLIExec(t *testing.T) {
	name, _ := execTarget(t)
	if r := berth(t, "exec", "-u", "berth", "-w", "/tmp", "-e", "X=y", name, "sh", "-c", "id -u; pwd; echo $X; exit 2"); r.code != 2 || r.stdout != "1000\n/tmp\ny\n" {
		t.Fatalf("%s", r)
	}
	if r := runCmd(t, berthCmd("exec", "-i", name, "cat"), "in\n"); r.code != 0 || r.stdout != "in\n" {
		t.Fatalf("exec -i: %s", r)
	}
	if r := berth(t, "exec", name, "nosuch"); r.code != 127 {
		t.Fatalf("missing binary: %s", r)
	}
	if r := berth(t, "exec", "-d", name, "sleep", "3"); r.code != 0 {
		t.Fatalf("exec -d: %s", r)
	}
}
