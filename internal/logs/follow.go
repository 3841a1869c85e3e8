package logs

import (
	"os"

	"golang.org/x/sys/unix"
)

// watcher wakes a following reader when the log file changes, so `logs -f` neither spins nor lags. It uses
// inotify; if that is unavailable the reader falls back to polling.
type watcher struct {
	f  *os.File
	ch chan struct{}
}

func newWatcher(path string) *watcher {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	if _, err := unix.InotifyAddWatch(fd, path, unix.IN_MODIFY|unix.IN_CLOSE_WRITE|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF); err != nil {
		unix.Close(fd)
		return nil
	}
	// A non-blocking fd handed to os.NewFile joins the runtime poller, so Close interrupts the Read below.
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify"), ch: make(chan struct{}, 1)}
	go w.loop()
	return w
}

func (w *watcher) loop() {
	buf := make([]byte, 4096)
	for {
		if _, err := w.f.Read(buf); err != nil {
			return
		}
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

// changed is signalled (coalesced) after the file was written; nil (blocks forever) without a watcher.
func (w *watcher) changed() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.ch
}

func (w *watcher) close() {
	if w != nil {
		w.f.Close()
	}
}
