// berthd is the Berth daemon. The same binary is re-executed as the monitor (argv[0] "berth-monitor")
// and, when no berth-init binary is installed next to it, as every container's init (argv[0]
// "berth-init") and exec helper. Installing Berth means berthd, berth-init (optional, faster) and berth.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/runtime/linux"
	"github.com/berth-dev/berth/internal/runtime/reaper"
	"github.com/berth-dev/berth/internal/runtime/userns"
	"github.com/spf13/cobra"
)

func main() {
	// Re-executed helpers first: they must not parse berthd's flags or start anything else.
	switch filepath.Base(os.Args[0]) {
	case linux.InitArg0:
		linux.InitMain()
		return
	case monitor.ProcessName:
		monitorMain(os.Args[1:])
		return
	case filepath.Base(reaper.Path):
		reaper.Main(os.Args[1:])
		return
	case userns.HolderArg0:
		userns.HolderMain()
		return
	}
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	var (
		opts     daemon.Options
		logLevel string
	)
	cmd := &cobra.Command{
		Use:           "berthd [OPTIONS]",
		Short:         "The Berth container engine daemon",
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       daemon.Version,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", logLevel)
			}
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			if len(opts.Hosts) == 0 {
				opts.Hosts = []string{"unix://" + filepath.Join(opts.ExecRoot, "berth.sock")}
			}
			if opts.PidFile == "" {
				opts.PidFile = filepath.Join(opts.ExecRoot, "berthd.pid")
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return daemon.Run(ctx, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataRoot, "data-root", "/var/lib/berth", "Root directory of persistent Berth state")
	f.StringVar(&opts.ExecRoot, "exec-root", "/run/berth", "Root directory for execution state files")
	f.StringArrayVarP(&opts.Hosts, "host", "H", nil, "Daemon socket(s) to listen on: unix:///path or tcp://addr:port, repeatable (default unix://<exec-root>/berth.sock)")
	f.StringVarP(&opts.SocketGroup, "group", "G", daemon.DefaultSocketGroup, "Group owning the unix socket(s) (mode 0660); \"\" for root only")
	f.BoolVar(&opts.TLS, "tls", false, "Serve tcp:// hosts over TLS (implied by --tlsverify); clients are not authenticated without --tlsverify")
	f.BoolVar(&opts.TLSVerify, "tlsverify", false, "Serve tcp:// hosts over TLS and require client certificates signed by --tlscacert")
	f.StringVar(&opts.TLSCACert, "tlscacert", "", "CA certificate that signs allowed clients' certificates (PEM)")
	f.StringVar(&opts.TLSCert, "tlscert", "", "The server's TLS certificate (PEM)")
	f.StringVar(&opts.TLSKey, "tlskey", "", "The server's TLS key (PEM)")
	f.BoolVar(&opts.InsecureTCP, "insecure-tcp", false, "Allow tcp:// hosts without TLS: anyone who can reach the port is root on this host")
	f.StringVarP(&logLevel, "log-level", "l", "info", "Set the logging level (debug, info, warn, error)")
	f.StringVarP(&opts.Bridge, "bridge", "b", "berth0", "Name of the default bridge interface (created if missing)")
	f.StringVar(&opts.BIP, "bip", "", "Default bridge's IP address and prefix, e.g. 172.17.0.1/16 (default: a free private subnet)")
	f.StringArrayVar(&opts.InsecureRegistries, "insecure-registry", nil, "Registry (host[:port] or CIDR) to reach over plain HTTP or unverified TLS; loopback always is")
	f.StringArrayVar(&opts.RegistryMirrors, "registry-mirror", nil, "Preferred Docker Hub mirror (URL)")
	f.StringVar(&opts.RegistryCertsDir, "registry-certs-dir", "/etc/berth/certs.d", "Directory of per-registry TLS files: <host[:port]>/ca.crt, client.cert, client.key")
	f.StringVar(&opts.UsernsRemap, "userns-remap", "", "Run containers in user namespaces mapped to this user's subordinate ids (/etc/subuid, /etc/subgid): \"default\" (makes user berthremap), user[:group] or uid[:gid]")
	f.StringVarP(&opts.PidFile, "pidfile", "p", "", "Path to use for the daemon PID file (default <exec-root>/berthd.pid)")
	return cmd
}
