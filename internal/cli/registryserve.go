package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/registry"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"
)

// newRegistryCommand is `berth registry`: an OCI distribution registry served by this process alone
// (no berthd needed), and its offline garbage collector.
func newRegistryCommand(e *env) *cobra.Command {
	reg := &cobra.Command{Use: "registry", Short: "Run a container registry", Args: noArgs, RunE: showHelp}

	var addr, root, htpasswd, authMode, realm, certFile, keyFile string
	var readOnly bool
	serve := &cobra.Command{
		Use:   "serve [OPTIONS]",
		Short: "Serve an OCI distribution (docker registry v2) API",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return errors.New("--root is required")
			}
			if (certFile == "") != (keyFile == "") {
				return errors.New("--tls-cert and --tls-key go together")
			}
			cfg := registry.Config{Root: root, ReadOnly: readOnly, Log: slog.New(slog.NewTextHandler(e.Err, nil))}
			if htpasswd != "" {
				a, err := registry.NewAuth(registry.AuthConfig{Htpasswd: htpasswd, Mode: authMode, Realm: realm})
				if err != nil {
					return err
				}
				cfg.Auth = a
			}
			h, err := registry.New(cfg)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
			scheme := "http"
			if certFile != "" {
				cert, err := tls.LoadX509KeyPair(certFile, keyFile)
				if err != nil {
					ln.Close()
					return err
				}
				srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
				ln = tls.NewListener(ln, srv.TLSConfig)
				scheme = "https"
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			// Tests and scripts read the bound address from this line (--addr may use port 0).
			fmt.Fprintf(e.Err, "registry listening on %s://%s (root %s)\n", scheme, ln.Addr(), root)
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		},
	}
	f := serve.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:5000", "Address to listen on (HOST:PORT)")
	f.StringVar(&root, "root", "", "Storage directory")
	f.BoolVar(&readOnly, "read-only", false, "Refuse pushes and deletes")
	f.StringVar(&htpasswd, "htpasswd", "", "Require credentials from this bcrypt htpasswd file")
	f.StringVar(&authMode, "auth", registry.AuthToken, `With --htpasswd: "token" (bearer tokens from /token) or "basic"`)
	f.StringVar(&realm, "token-realm", "", "Token endpoint URL to announce (default: this server's /token)")
	f.StringVar(&certFile, "tls-cert", "", "Serve HTTPS with this certificate (PEM)")
	f.StringVar(&keyFile, "tls-key", "", "Key of --tls-cert (PEM)")

	var gcRoot string
	var dryRun, untagged bool
	gc := &cobra.Command{
		Use:   "gc [OPTIONS]",
		Short: "Remove blobs no manifest references (run while the registry is stopped or read-only)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if gcRoot == "" {
				return errors.New("--root is required")
			}
			st, err := registry.GC(gcRoot, registry.GCOptions{DryRun: dryRun, DeleteUntagged: untagged, Out: e.Out})
			if err != nil {
				return err
			}
			if !dryRun {
				fmt.Fprintf(e.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(st.Bytes)))
			}
			return nil
		},
	}
	gf := gc.Flags()
	gf.StringVar(&gcRoot, "root", "", "Storage directory")
	gf.BoolVar(&dryRun, "dry-run", false, "Only list what would be removed")
	gf.BoolVar(&untagged, "delete-untagged", false, "Also remove manifests no tag reaches")
	reg.AddCommand(serve, gc)
	return reg
}
