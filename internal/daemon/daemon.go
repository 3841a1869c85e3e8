// Package daemon wires berthd together: it opens the stores, starts or reconnects to the monitor, builds
// the services and serves the API. It is the one place that knows every package; the services only know
// the narrow interfaces they are given.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/cluster"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/runtime/userns"
	"github.com/berth-dev/berth/internal/snapshot"
	"github.com/berth-dev/berth/internal/volume"
	apiversion "github.com/docker/docker/api"
	"github.com/docker/docker/api/types"
	eventtypes "github.com/docker/docker/api/types/events"
	bolt "go.etcd.io/bbolt"
)

// Version is berthd's version, shown by `docker version`.
var Version = "0.1.0-dev"

// Options are berthd's flags.
type Options struct {
	DataRoot string
	ExecRoot string
	PidFile  string
	// ListenOptions are -H, -G and the TLS flags.
	ListenOptions
	// Bridge names the default bridge's interface ("" = berth0); BIP is its address and prefix (--bip).
	Bridge, BIP string
	Logger      *slog.Logger
	Version     string
	// InsecureRegistries (host[:port] or CIDR) may be reached over plain HTTP or unverified TLS;
	// RegistryMirrors are tried before Docker Hub; RegistryCertsDir holds <host>/ca.crt and client certs.
	InsecureRegistries, RegistryMirrors []string
	RegistryCertsDir                    string
	// UsernsRemap is --userns-remap: "" (off), "default", "user[:group]" or "uid[:gid]".
	UsernsRemap string
}

// Daemon is a running berthd.
type Daemon struct {
	opts       Options
	id         string
	log        *slog.Logger
	db         *bolt.DB
	images     *image.Service
	dist       *distribution.Service
	containers *container.Service
	networks   *network.Service
	volumes    *volume.Service
	events     *events.Bus
	builds     *build.Service
	cluster    *cluster.Service
	overlay    *overlayAgent
	snapDriver string
	runtimes   map[string]string
	remap      *userns.Remap
}

// Run starts berthd and serves until ctx is cancelled (SIGTERM), then shuts down cleanly. Running
// containers are left to the monitor and keep running.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Version == "" {
		opts.Version = Version
	}
	log := opts.Logger
	for _, dir := range []string{opts.DataRoot, opts.ExecRoot} {
		if !filepath.IsAbs(dir) {
			return fmt.Errorf("%s: the data root and exec root must be absolute paths", dir)
		}
	}
	// Refuse a bad -H/TLS combination before taking any lock or touching state.
	if err := opts.ListenOptions.check(); err != nil {
		return err
	}
	dataLock, err := lockRoot(opts.DataRoot)
	if err != nil {
		return err
	}
	defer dataLock.Close()
	execLock, err := lockRoot(opts.ExecRoot)
	if err != nil {
		return err
	}
	defer execLock.Close()
	if opts.PidFile != "" {
		if err := os.WriteFile(opts.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("writing pid file: %w", err)
		}
		defer os.Remove(opts.PidFile)
	}

	d := &Daemon{opts: opts, log: log, runtimes: map[string]string{}}
	if err := d.open(ctx); err != nil {
		return err
	}
	defer d.db.Close()
	defer d.networks.Close()
	defer d.overlay.Close()
	defer d.serveExecutorDebug()()
	d.openCluster(ctx)
	defer d.cluster.Close()

	srv := api.New(api.Config{
		Images:     imageBackend{d.images},
		Containers: containerBackend{d.containers},
		Networks:   networkBackend{d},
		Volumes:    volumeBackend{d.volumes},
		System:     systemInfo{d},
		Events:     eventsBackend{d.events},
		Builder:    buildBackend{d.builds},
		Registry:   registryBackend{d.dist},
		Swarm:      d.cluster,
		Version:    d.version(),
		Logger:     log,
	})
	listeners, err := listenAll(opts.ListenOptions, log)
	if err != nil {
		return err
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
		log.Info("API listening", "addr", l.Addr().String())
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("API server stopped", "err", err)
		}
	}
	log.Info("shutting down; running containers stay up")
	shCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shCtx)
	for _, l := range listeners {
		l.Close()
		if ul, ok := l.(*net.UnixListener); ok {
			_ = os.Remove(ul.Addr().String())
		}
	}
	return nil
}

func (d *Daemon) open(ctx context.Context) error {
	opts := d.opts
	for _, dir := range []string{opts.DataRoot, opts.ExecRoot} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return err
		}
	}
	db, err := bolt.Open(filepath.Join(opts.DataRoot, "metadata.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("opening metadata database: %w", err)
	}
	d.db = db
	d.id = daemonID(db)
	if d.remap, err = userns.Parse(opts.UsernsRemap); err != nil {
		return err
	}
	// The data root is no one else's to walk: containers' layers and volumes hold files that are root's
	// on disk, setuid bits included (the CVE-2021-41091 class). The exec root stays searchable, for the
	// socket. A remapped container's root reaches its files through the group, as with Docker.
	dataGID := 0
	if d.remap != nil {
		dataGID = d.remap.RootGID()
	}
	if err := os.Chown(opts.DataRoot, 0, dataGID); err != nil {
		return err
	}
	if err := os.Chmod(opts.DataRoot, 0o710); err != nil {
		return err
	}
	if d.remap != nil {
		why, err := d.remap.Check(opts.DataRoot, opts.ExecRoot)
		if err != nil {
			return err
		}
		d.log.Info("user namespaces: container root is mapped", "user", d.remap.User,
			"uid", d.remap.RootUID(), "gid", d.remap.RootGID(), "idmapped", d.remap.IDMapped)
		if why != nil {
			d.log.Warn("user namespaces without idmapped mounts: containers use chowned copies of image layers (more disk, a slower first start)", "reason", why)
		}
	}

	cs, err := content.Open(filepath.Join(opts.DataRoot, "content"))
	if err != nil {
		return err
	}
	snapRoot := filepath.Join(opts.DataRoot, "snapshots")
	if err := os.MkdirAll(snapRoot, 0o700); err != nil {
		return err
	}
	var sn snapshot.Snapshotter
	if err := snapshot.Supported(snapRoot); err == nil {
		sn, err = snapshot.NewOverlay(snapRoot, db)
		if err != nil {
			return err
		}
		d.snapDriver = "overlay2"
	} else {
		d.log.Warn("overlayfs not usable here; falling back to copying snapshots (slower, more disk)", "reason", err)
		sn, err = snapshot.NewCopy(snapRoot, db)
		if err != nil {
			return err
		}
		d.snapDriver = "vfs"
	}

	for _, name := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(name); err == nil {
			d.runtimes[name] = p
		}
	}

	mon, err := monitor.Ensure(ctx, opts.ExecRoot, func() *exec.Cmd { return monitorCommand(opts.ExecRoot) })
	if err != nil {
		return fmt.Errorf("starting the monitor: %w", err)
	}

	var cs2 *container.Service
	d.events = events.New(0)
	imgs, err := image.New(image.Config{
		Root: opts.DataRoot, DB: db, Content: cs, Snapshotter: sn,
		Events: d.events.Hook(eventtypes.ImageEventType),
		ContainersUsing: func(id string) ([]string, []string) {
			if cs2 == nil {
				return nil, nil
			}
			return cs2.ContainersUsing(id)
		},
	})
	if err != nil {
		return err
	}
	d.images = imgs
	if d.dist, err = distribution.New(distribution.Config{
		Root: opts.DataRoot, DB: db, Images: imgs,
		Insecure: opts.InsecureRegistries, Mirrors: opts.RegistryMirrors, CertsDir: opts.RegistryCertsDir,
	}); err != nil {
		return err
	}
	d.overlay = newOverlayAgent(opts.ExecRoot, d.log)
	d.networks, err = network.Open(ctx, network.Config{
		DB: db, ExecRoot: opts.ExecRoot, DefaultBridge: opts.Bridge, DefaultCIDR: opts.BIP, Logger: d.log,
		Event: d.events.Hook(eventtypes.NetworkEventType), Overlay: d.overlay,
	})
	if err != nil {
		return fmt.Errorf("networking: %w", err)
	}
	d.overlay.nets = d.networks
	vols, err := volume.New(volume.Config{
		Root: filepath.Join(opts.DataRoot, "volumes"), DB: db, Logger: d.log,
		Events: d.events.Hook(eventtypes.VolumeEventType),
	})
	if err != nil {
		return err
	}
	d.volumes = vols
	if d.remap != nil && d.remap.IDMapped {
		// Through idmapped mounts a container's root writes volume files as uid 0 on disk, setuid bits
		// and all: no one but root may reach them on the host. (Without idmapped mounts they are owned
		// by the remapped ids, and the container's root reaches them by this path.)
		if err := os.Chmod(filepath.Join(opts.DataRoot, "volumes"), 0o700); err != nil {
			return err
		}
	}
	cs2, err = container.New(container.Config{
		Root:       filepath.Join(opts.DataRoot, "containers"),
		ExecRoot:   filepath.Join(opts.ExecRoot, "bundles"),
		DB:         db,
		Images:     imageResolver{imgs},
		Rootfs:     rootfsManager{sn: sn, remap: d.remap},
		Monitor:    monitorAdapter{mon},
		Runtimes:   d.runtimes,
		InitBinary: initBinary(),
		Networks:   d.networks,
		Volumes:    volumeStore{vols},
		Logger:     d.log,
		Events:     d.events.Hook(eventtypes.ContainerEventType),
		Remap:      d.remap,
	})
	if err != nil {
		return err
	}
	d.containers = cs2
	if d.builds, err = build.New(build.Config{
		Root: buildRoot(opts.DataRoot), DB: db,
		Images: buildImages{s: imgs, sn: sn, tmp: buildRoot(opts.DataRoot)},
		Runner: buildRunner{cs2},
		Pull:   d.pullForBuild,
	}); err != nil {
		return err
	}
	// Restore follows the monitor's events for the daemon's whole life.
	if err := cs2.Restore(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	return nil
}

// monitorCommand re-executes this binary as the monitor. It runs in its own session so that neither a
// signal to berthd's process group nor berthd's death reaches it.
func monitorCommand(execRoot string) *exec.Cmd {
	cmd := exec.Command("/proc/self/exe", "--exec-root", execRoot)
	cmd.Args[0] = monitor.ProcessName
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

func daemonID(db *bolt.DB) string {
	var id string
	_ = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("daemon"))
		if err != nil {
			return err
		}
		if v := b.Get([]byte("id")); v != nil {
			id = string(v)
			return nil
		}
		buf := make([]byte, 16)
		_, _ = rand.Read(buf)
		id = strings.ToUpper(hex.EncodeToString(buf))
		return b.Put([]byte("id"), []byte(id))
	})
	return id
}

func (d *Daemon) version() types.Version {
	return types.Version{
		Platform:      struct{ Name string }{Name: "Berth"},
		Version:       d.opts.Version,
		APIVersion:    apiversion.DefaultVersion,
		MinAPIVersion: "1.24",
		GitCommit:     "",
		GoVersion:     goVersion(),
		Os:            "linux",
		Arch:          goArch(),
		KernelVersion: kernelVersion(),
		Components: []types.ComponentVersion{{
			Name: "Engine", Version: d.opts.Version,
			Details: map[string]string{"ApiVersion": apiversion.DefaultVersion, "MinAPIVersion": "1.24", "Os": "linux", "Arch": goArch()},
		}},
	}
}

// initBinary is what --init puts in a container: the berth-init installed next to berthd, or berthd
// itself, which also answers to the name docker-init. Both are static, so they run in any image.
func initBinary() string {
	if p := InstalledInit(); p != "" {
		return p
	}
	exe, _ := os.Executable()
	return exe
}

// InstalledInit is the berth-init binary installed next to the running executable, or "" when there is
// none. It starts faster than berthd as a container's init or exec helper.
func InstalledInit() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(exe), "berth-init")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}
