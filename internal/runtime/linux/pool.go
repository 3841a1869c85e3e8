package linux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// warmFlags is the namespace set a spare serves: Docker's default (new pid, mount, uts, ipc and net; the
// cgroup namespace is unshared later in any case). A spare is cloned with the pid, uts and ipc ones. It
// unshares the mount namespace once it has its job (see spare.go), and the network namespace is also
// settled then: unshared for --network none, joined by path for a bridge (berthd made and wired it
// beforehand), or left as the host's. Most containers get a namespace from berthd, so a spare that made
// one at clone would have it thrown away: a creation and a teardown of a namespace in the kernel per
// container, for nothing.
const (
	warmFlags  = unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWNET
	spareFlags = warmFlags &^ (unix.CLONE_NEWNS | unix.CLONE_NEWNET)
)

// spareStartTimeout bounds how long a new spare may take to report ready before it is given up.
const spareStartTimeout = 10 * time.Second

// refillDelay is how long after a spare is used the next one starts. Back-to-back `run --rm true`
// cycles take ~70 ms here, so a spare started this late is still ready for the next one.
const refillDelay = 30 * time.Millisecond

// errSpareGone means a spare could not take its job (it died, or was never really up); the start goes
// on the cold path instead.
var errSpareGone = errors.New("spare init gone")

// Pool starts containers like Spawn, but keeps one init started ahead of time, so that a start whose
// namespaces are the default set skips the exec and Go runtime start of the init (most of Spawn's time).
// A start that finds no spare ready, or needs other namespaces, takes the cold path. A spare costs one
// idle process; it dies with the thread of the pool that started it (PR_SET_PDEATHSIG), so a dead
// monitor leaks none, and it runs nothing of a container's before it is in that container's cgroup.
type Pool struct {
	initPath string
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	wake     chan struct{}
	kept     chan struct{} // closed when the keeper goroutine has returned

	mu    sync.Mutex
	spare *spare
	ready chan struct{} // closed and replaced whenever a spare becomes ready (for tests)
}

type spare struct {
	cmd  *exec.Cmd
	conn *net.UnixConn
}

// NewPool starts keeping a spare init of initPath ("" means /proc/self/exe, as for Spawn). Close it to
// kill the spare and wait for background cgroup removals.
func NewPool(initPath string) *Pool {
	if initPath == "" {
		initPath = "/proc/self/exe"
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		initPath: initPath, ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), kept: make(chan struct{}), ready: make(chan struct{}),
	}
	go p.keep()
	p.refill()
	return p
}

// Spawn is Spawn (the package function) through the pool: the same options, result and errors.
func (p *Pool) Spawn(ctx context.Context, o SpawnOptions) (*Process, error) {
	s, flags, err := prepare(ctx, o)
	if err != nil {
		return nil, err
	}
	if (o.InitPath == "" || o.InitPath == p.initPath) && warmable(s, flags) {
		if sp := p.take(); sp != nil {
			// The next spare starts a little after this container runs, not while it starts, so the
			// two do not compete for the CPU, nor does the spare with the exit of a short-lived run.
			defer time.AfterFunc(refillDelay, p.refill)
			proc, err := startInit(ctx, o, s, func(syncR, errW *os.File) (*exec.Cmd, error) {
				return sp.handoff(ctx, wantsCtty(s, o.Stdio), []*os.File{o.Stdio.Stdin, o.Stdio.Stdout, o.Stdio.Stderr, syncR, errW})
			})
			if !errors.Is(err, errSpareGone) {
				if proc != nil {
					proc.warm = true
				}
				return proc, err
			}
		}
	}
	return startInit(ctx, o, s, func(syncR, errW *os.File) (*exec.Cmd, error) {
		return startCold(o, s, flags, syncR, errW)
	})
}

// warmable reports whether a spare's namespaces fit s: the default set, where uts and ipc may also be
// joined by path (the init's setns then leaves the spare's own fresh one, as a cold init never had it),
// with any network namespace: new, joined by path, or the host's.
func warmable(s *specs.Spec, flags uintptr) bool {
	for _, ns := range s.Linux.Namespaces {
		if _, ok := setnsFlag[ns.Type]; ok && ns.Path != "" && ns.Type != specs.CgroupNamespace {
			flags |= nsCloneFlag[ns.Type]
		}
	}
	return flags|unix.CLONE_NEWNET == warmFlags
}

// Close kills the spare, stops making new ones and waits (up to ten seconds) for the cgroups of exited
// containers to be removed. Containers already started are not touched.
func (p *Pool) Close() error {
	p.cancel()
	<-p.kept
	if sp := p.take(); sp != nil {
		sp.discard()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitAllRemovals(ctx); err != nil {
		return fmt.Errorf("waiting for cgroup removals: %w", err)
	}
	return nil
}

func (p *Pool) take() *spare {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp := p.spare
	p.spare = nil
	return sp
}

func (p *Pool) refill() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// keep starts a spare whenever there is none. It runs on a thread of its own for the pool's life: the
// parent-death signal fires when the thread that forked a spare ends, and the Go runtime ends a thread
// only when a goroutine locked to it returns, so no spare can die early, and all die with the pool.
func (p *Pool) keep() {
	runtime.LockOSThread() // never unlocked: see above
	defer close(p.kept)
	failures := 0
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		}
		for p.needSpare() {
			sp, err := startSpare(p.ctx, p.initPath)
			if err == nil {
				failures = 0
				if !p.put(sp) {
					sp.discard()
				}
				break
			}
			// A binary that cannot start spares must not make the monitor spin: back off, cold starts work.
			failures++
			delay := min(50*time.Millisecond<<min(failures, 10), 30*time.Second)
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(delay):
			}
		}
	}
}

func (p *Pool) needSpare() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.spare == nil && p.ctx.Err() == nil
}

func (p *Pool) put(sp *spare) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil || p.spare != nil {
		return false
	}
	p.spare = sp
	close(p.ready)
	p.ready = make(chan struct{})
	return true
}

// waitSpare waits until a spare is ready; tests use it to know the next start is warm.
func (p *Pool) waitSpare(ctx context.Context) (*spare, error) {
	for {
		p.mu.Lock()
		sp, ready := p.spare, p.ready
		p.mu.Unlock()
		if sp != nil {
			return sp, nil
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// startSpare starts an init in spare mode and waits for it to report ready.
func startSpare(ctx context.Context, initPath string) (*spare, error) {
	initPath, err := protectedExe(initPath)
	if err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	child := os.NewFile(uintptr(fds[1]), "spare-socket")
	defer child.Close()
	parent := os.NewFile(uintptr(fds[0]), "spare-socket")
	fc, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		return nil, err
	}
	conn := fc.(*net.UnixConn)
	cmd := &exec.Cmd{
		Path:       initPath,
		Args:       []string{InitArg0, spareArg},
		Env:        []string{"GOMAXPROCS=1"},
		ExtraFiles: []*os.File{child, child}, // spareSockFd, and a placeholder for the error pipe
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: spareFlags,
			Setsid:     true,
			Pdeathsig:  syscall.SIGKILL,
		},
	}
	// The spare boots at normal priority. Booting it at SCHED_IDLE (tried) inverts priorities on a busy
	// machine: the forking thread holds Go's fork lock, and an idle-class thread may not run for seconds,
	// stalling every other fork in the monitor (cold starts, execs) behind it.
	orig, err := unix.SchedGetAttr(0, 0)
	idleBoot := false
	err = cmd.Start()
	if idleBoot {
		_ = unix.SchedSetAttr(0, orig, 0)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start spare init: %w", err)
	}
	child.Close()
	sp := &spare{cmd: cmd, conn: conn}
	_ = conn.SetReadDeadline(time.Now().Add(spareStartTimeout))
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	b := make([]byte, 1)
	n, err := conn.Read(b)
	if err == nil && (n != 1 || b[0] != spareReady) {
		err = fmt.Errorf("spare init said %q", b[:n])
	}
	if err == nil && idleBoot {
		err = restoreSched(cmd.Process.Pid, orig)
	}
	if err != nil {
		sp.discard()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Time{})
	return sp, nil
}

// restoreSched gives every thread of process pid the scheduling attributes attr. Threads the process
// starts meanwhile inherit the policy of the thread that starts them, so a pass that finds nothing left
// to change is the last.
func restoreSched(pid int, attr *unix.SchedAttr) error {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	for pass := 0; pass < 10; pass++ {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		changed := false
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			cur, err := unix.SchedGetAttr(tid, 0)
			if err != nil || cur.Policy != unix.SCHED_IDLE {
				continue // gone, or done
			}
			a := *attr
			if err := unix.SchedSetAttr(tid, &a, 0); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("restore scheduling of spare thread %d: %w", tid, err)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return errors.New("spare threads keep appearing at idle priority")
}

// handoff gives the spare its job: files[i] becomes its fd i (a nil stdio file leaves its /dev/null),
// and returns the spare's command once it has acknowledged. errSpareGone means it could not take it.
func (sp *spare) handoff(ctx context.Context, ctty bool, files []*os.File) (*exec.Cmd, error) {
	hdr := []byte{0}
	if ctty {
		hdr[0] |= jobCtty
	}
	var fds []int
	for i, f := range files {
		if f == nil {
			continue
		}
		// Fd also puts the file in blocking mode, as exec does for a cold init's files.
		fds = append(fds, int(f.Fd()))
		hdr = append(hdr, byte(i))
	}
	stop := context.AfterFunc(ctx, func() { _ = sp.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	_, _, err := sp.conn.WriteMsgUnix(hdr, unix.UnixRights(fds...), nil)
	runtime.KeepAlive(files)
	if err == nil {
		b := make([]byte, 1)
		var n int
		n, err = sp.conn.Read(b)
		if err == nil && (n != 1 || b[0] != spareAck) {
			err = fmt.Errorf("spare init said %q", b[:n])
		}
	}
	if err != nil {
		sp.discard()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", errSpareGone, err)
	}
	sp.conn.Close()
	return sp.cmd, nil
}

// discard kills a spare that will not be used and reaps it.
func (sp *spare) discard() {
	sp.conn.Close()
	_ = sp.cmd.Process.Kill()
	_ = sp.cmd.Wait()
}
