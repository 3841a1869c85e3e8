package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockRoot takes an exclusive lock on dir for the life of the process, so a second berthd on the same
// data root (or exec root) is refused instead of corrupting state. The lock file holds the owner's pid
// so the refusal can name it.
func lockRoot(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "berthd.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			data, _ := os.ReadFile(p)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
			if pid > 0 {
				return nil, fmt.Errorf("another berthd (pid %d) is already using %s; stop it first or pick another directory", pid, dir)
			}
			return nil, fmt.Errorf("another berthd is already using %s; stop it first or pick another directory", dir)
		}
		return nil, err
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}
