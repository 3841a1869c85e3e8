package monitor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// ProcessName is the argv[0] berthd re-executes itself with to run the monitor.
const ProcessName = "berth-monitor"

// Main runs the monitor until SIGTERM or SIGINT and returns the process exit code. cmd/berthd calls it
// when argv[0] is ProcessName, with os.Args[1:] and Berth's builtin runtime as builtin (the launcher for
// runtime "" and "berth"). Flags: --exec-root (default /run/berth), --debug.
func Main(args []string, builtin Launcher, execer Execer) int {
	fs := flag.NewFlagSet(ProcessName, flag.ContinueOnError)
	execRoot := fs.String("exec-root", "/run/berth", "directory for the monitor's socket and per-container state")
	debug := fs.Bool("debug", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	// A hang-up from a terminal it was started from must not end it. Caught, not ignored: an ignored
	// signal stays ignored across exec, and containers must get default dispositions.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	s, err := NewServer(Options{ExecRoot: *execRoot, Builtin: builtin, Execer: execer, Logger: logger})
	if err == nil {
		err = s.Serve(ctx)
	}
	switch {
	case errors.Is(err, ErrAlreadyRunning):
		logger.Info("another monitor serves this exec root; exiting", "exec-root", *execRoot)
		return 0
	case err != nil:
		fmt.Fprintln(os.Stderr, "berth-monitor:", err)
		return 1
	}
	return 0
}
