package linux

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroups"
	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/berth-dev/berth/internal/runtime/userns"
)

// InitArg0 is argv[0] of the re-executed container init; main checks for it before anything else.
const InitArg0 = "berth-init"

// Stdio are the container's standard streams; a nil file means /dev/null. For a TTY container pass the
// pty's replica as all three.
type Stdio struct{ Stdin, Stdout, Stderr *os.File }

// SpawnOptions says which bundle to run and how.
type SpawnOptions struct {
	ID string
	// Bundle is the directory holding config.json; the spec's root.path may be relative to it.
	Bundle string
	Stdio  Stdio
	// InitPath is the binary to re-execute as init; "" means /proc/self/exe.
	InitPath string
}

// ExitStatus is how a container's main process ended.
type ExitStatus struct {
	Code      int // exit code, or 128+signal when killed by a signal
	Signal    int // the killing signal, 0 if it exited
	OOMKilled bool
}

var nsCloneFlag = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// Spawn starts the container described by the bundle and returns once its entrypoint has been
// execve'd, or with the error that stopped it (an *InitError wrapped with an errdefs kind when the init
// itself failed). ctx bounds the start only: cancelling it later does not touch the container.
// Spawn always starts a fresh init; a Pool's Spawn can hand the job to one started beforehand.
func Spawn(ctx context.Context, o SpawnOptions) (*Process, error) {
	s, flags, err := prepare(ctx, o)
	if err != nil {
		return nil, err
	}
	return startInit(ctx, o, s, func(syncR, errW *os.File) (*exec.Cmd, error) {
		return startCold(o, s, flags, syncR, errW)
	})
}

// prepare reads and checks the bundle and works out the namespaces the init must be cloned with.
func prepare(ctx context.Context, o SpawnOptions) (*specs.Spec, uintptr, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	s, err := spec.ReadBundle(o.Bundle)
	if err != nil {
		return nil, 0, errdefs.InvalidParameter(fmt.Errorf("read bundle: %w", err))
	}
	if s.Process == nil || len(s.Process.Args) == 0 || s.Root == nil || s.Linux == nil {
		return nil, 0, errdefs.InvalidParameter(errors.New("config.json needs process.args, root and linux"))
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(o.Bundle, s.Root.Path)
	}
	var cloneFlags uintptr
	for _, ns := range s.Linux.Namespaces {
		f, ok := nsCloneFlag[ns.Type]
		if !ok || ns.Path != "" {
			continue // cgroup is unshared by the init once it is in its cgroup; paths are joined by setns
		}
		cloneFlags |= f
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" && (ns.Type == specs.PIDNamespace || ns.Type == specs.UserNamespace) {
			return nil, 0, errdefs.NotImplemented(fmt.Errorf("joining a %s namespace is not supported yet", ns.Type))
		}
	}
	if cloneFlags&unix.CLONE_NEWUSER != 0 && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return nil, 0, errdefs.InvalidParameter(errors.New("a user namespace needs uidMappings and gidMappings"))
	}
	return s, cloneFlags, nil
}

// startCold forks and execs a new init for s, with the sync and error pipes as its fds 3 and 4.
func startCold(o SpawnOptions, s *specs.Spec, cloneFlags uintptr, syncR, errW *os.File) (*exec.Cmd, error) {
	initPath, err := protectedExe(o.InitPath)
	if err != nil {
		return nil, errdefs.System(err)
	}
	cmd := &exec.Cmd{
		Path:       initPath,
		Args:       []string{InitArg0},
		Env:        []string{"GOMAXPROCS=1"},
		Stdin:      nilIfEmpty(o.Stdio.Stdin),
		Stdout:     nilIfEmpty(o.Stdio.Stdout),
		Stderr:     nilIfEmpty(o.Stdio.Stderr),
		ExtraFiles: []*os.File{syncR, errW},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: cloneFlags,
			Setsid:     true,
		},
	}
	if wantsCtty(s, o.Stdio) {
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
	}
	start := cmd.Start
	if cloneFlags&unix.CLONE_NEWUSER != 0 {
		// The maps are written by the parent before the child goes on; the child then becomes the
		// namespace's root, so that the init it execs keeps its capabilities there.
		cmd.SysProcAttr.UidMappings = userns.SysMap(s.Linux.UIDMappings)
		cmd.SysProcAttr.GidMappings = userns.SysMap(s.Linux.GIDMappings)
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		cmd.SysProcAttr.Credential = &syscall.Credential{}
		start = func() error { return startInJoinedNamespaces(cmd, s) }
	}
	if err := start(); err != nil {
		return nil, errdefs.System(fmt.Errorf("start container init: %w", err))
	}
	return cmd, nil
}

// startInJoinedNamespaces starts cmd from a thread that has already joined the spec's namespaces given
// by path. A container with its own user namespace cannot join them itself: a namespace made by the
// engine (the network's, say) belongs to the host's user namespace, over which the container's root has
// no rights. A child is cloned in its parent thread's namespaces, so this thread joins them first, and
// is thrown away afterwards rather than switched back.
func startInJoinedNamespaces(cmd *exec.Cmd, s *specs.Spec) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if err := joinNamespaces(s); err != nil {
			done <- err
			return
		}
		// The init finds itself already there; it could not even open the engine's paths.
		for i, ns := range s.Linux.Namespaces {
			if name, ok := procNsName[ns.Type]; ok && ns.Path != "" {
				s.Linux.Namespaces[i].Path = "/proc/self/ns/" + name
			}
		}
		done <- cmd.Start()
	}()
	return <-done
}

// wantsCtty says whether the init must make its stdin its controlling terminal.
func wantsCtty(s *specs.Spec, stdio Stdio) bool {
	return s.Process.Terminal && stdio.Stdin != nil && isTerminal(stdio.Stdin)
}

// startInit runs the parent's half of a container start, the same whichever way the init came to be:
// launch gets the init going with the pipes' child ends (it owns neither), then the init is put in its
// cgroup, released with the spec, and watched until it execs or reports an error.
func startInit(ctx context.Context, o SpawnOptions, s *specs.Spec, launch func(syncR, errW *os.File) (*exec.Cmd, error)) (*Process, error) {
	if s.Linux.CgroupsPath != "" {
		// A cgroup of the same path still being removed after an earlier run would vanish under us.
		if err := waitCgroupRemoved(ctx, s.Linux.CgroupsPath); err != nil {
			return nil, err
		}
	}
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, errdefs.System(err)
	}
	defer syncR.Close()
	defer syncW.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, errdefs.System(err)
	}
	defer errR.Close()
	defer errW.Close()
	cmd, err := launch(syncR, errW)
	if err != nil {
		return nil, err
	}
	syncR.Close()
	errW.Close()

	p := newProcess(o.ID, cmd)
	fail := func(err error) (*Process, error) {
		_ = cmd.Process.Kill()
		_, _ = p.Wait()
		// Not the hot path: the caller may retry at once, so the cgroup must be gone when we return.
		<-p.cleaned
		return nil, err
	}
	if s.Linux.CgroupsPath != "" {
		cg, err := cgroups.New(s.Linux.CgroupsPath)
		if err != nil {
			return fail(errdefs.System(err))
		}
		p.cg, p.cgPath = cg, s.Linux.CgroupsPath
		if err := cg.Create(s.Linux.Resources); err != nil {
			return fail(errdefs.System(fmt.Errorf("create cgroup: %w", err)))
		}
		if err := cg.Apply(cmd.Process.Pid); err != nil {
			return fail(errdefs.System(err))
		}
	}
	// The spec goes over the pipe so the init reads exactly what was validated here, with root resolved.
	if err := json.NewEncoder(syncW).Encode(s); err != nil {
		return fail(errdefs.System(fmt.Errorf("send spec to init: %w", err)))
	}
	syncW.Close()

	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := io.ReadAll(errR)
		done <- result{b, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return fail(ctx.Err())
	}
	if r.err != nil {
		return fail(errdefs.System(r.err))
	}
	if len(r.b) > 0 {
		var ie initError
		if err := json.Unmarshal(r.b, &ie); err != nil {
			ie = initError{Kind: kindSystem, Message: string(r.b)}
		}
		return fail(ie.toError())
	}
	return p, nil
}

// nilIfEmpty keeps a nil *os.File from becoming a non-nil io.Reader/io.Writer holding nil, which exec
// would try to use instead of opening /dev/null.
func nilIfEmpty(f *os.File) interface {
	io.Reader
	io.Writer
} {
	if f == nil {
		return nil
	}
	return f
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
