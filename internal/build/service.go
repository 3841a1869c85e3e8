package build

import (
	"context"
	"fmt"
	"github.com/docker/docker/api/types/registry"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// Image is what the builder needs to know of an image.
type Image struct {
	ID      string // "sha256:..."
	Config  dockerspec.DockerOCIImage
	Created time.Time
}

// Child is one step's image: Parent ("" for scratch) plus Layer (nil for a config-only step).
type Child struct {
	Parent    string
	Layer     io.Reader
	Config    dockerspec.DockerOCIImageConfig
	CreatedBy string
	Created   time.Time
}

// Images is the image store as the builder uses it.
type Images interface {
	// Get resolves a reference or ID; an unknown one is errdefs.NotFound.
	Get(ctx context.Context, ref string) (Image, error)
	// WriteChild stores a step's image and returns its ID.
	WriteChild(ctx context.Context, c Child) (string, error)
	// Tag points ref at the image id.
	Tag(ctx context.Context, id, ref string) error
	// OpenLayer reads a stored layer tar by its diff ID.
	OpenLayer(ctx context.Context, diffID string) (io.ReadCloser, error)
	// Mount shows the image's root filesystem read-only at a temporary directory until release.
	Mount(ctx context.Context, id string) (dir string, release func(), err error)
}

// RunRequest is one RUN step's container.
type RunRequest struct {
	Image       string
	Cmd         []string // the full command, shell included
	Env         []string
	User        string
	WorkingDir  string
	NetworkMode string
	// Resources limit the container (docker build -m, --cpu-shares, ...).
	Resources Resources
	// ExtraHosts are --add-host entries for the container's /etc/hosts.
	ExtraHosts []string
	// Output receives the command's stdout and stderr as they come.
	Output io.Writer
	// Started is called with the container's ID once it runs.
	Started func(id string)
}

// Resources are the limits RUN containers get.
type Resources struct {
	Memory, MemorySwap, CPUShares, CPUPeriod, CPUQuota int64
	CpusetCpus                                         string
	ShmSize                                            int64 // /dev/shm's size; 0 = the default
	Ulimits                                            []Ulimit
}

// Ulimit is one --ulimit of RUN containers.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// Runner runs RUN steps.
type Runner interface {
	// Run runs req in a new container and waits for it. When the command exits 0, commit is called with
	// the container's layer tar before the container is removed; the container is removed in every case.
	Run(ctx context.Context, req RunRequest, commit func(layer io.Reader) error) (exitCode int, err error)
}

// Config is what the service is built from.
type Config struct {
	Root   string // <data-root>/builder: contexts being built are unpacked here
	DB     *bolt.DB
	Images Images
	Runner Runner
	// Pull fetches a base image that is not stored, or every base with --pull; nil means never. It
	// writes its progress lines to out; auths are the registry credentials the client sent.
	Pull func(ctx context.Context, ref string, auths map[string]registry.AuthConfig, out io.Writer) error
}

// Service builds images.
type Service struct {
	cfg    Config
	synced *syncStore

	touchMu sync.Mutex
	touched map[string]time.Time // cache keys by when this daemon last recorded their use
}

// New returns the service, removing what an interrupted build left in Root.
func New(cfg Config) (*Service, error) {
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, errdefs.System(err)
	}
	if old, _ := filepath.Glob(filepath.Join(cfg.Root, "context-*")); len(old) > 0 {
		for _, p := range old {
			os.RemoveAll(p)
		}
	}
	if err := cfg.DB.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketCache); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(bucketCacheUsed)
		return err
	}); err != nil {
		return nil, errdefs.System(err)
	}
	return &Service{cfg: cfg, synced: newSyncStore(filepath.Join(cfg.Root, "synced"))}, nil
}

// Options are a build's settings, as POST /build's query gives them.
type Options struct {
	Tags       []string
	Dockerfile string // path in the context; "" means "Dockerfile"
	BuildArgs  map[string]*string
	NoCache    bool
	Target     string
	Labels     map[string]string
	// CacheFrom names images whose history and layers steps may reuse (see fromCacheSources).
	CacheFrom   []string
	NetworkMode string
	// ExtraHosts (--add-host) go into every RUN step's /etc/hosts.
	ExtraHosts []string
	// SuppressOutput (-q) leaves out step output; the image ID is still reported.
	SuppressOutput bool
	// Remote is a git repository to use as the context instead of the request body.
	Remote string
	// SyncSession names a context sync (SyncContext): the body is then the tar of the paths it asked
	// for, and the build runs on the synced tree.
	SyncSession string
	// Resources limit every RUN step's container.
	Resources Resources
	// PullParent (--pull) fetches base images even when stored; Auths are the client's credentials
	// by registry (X-Registry-Config).
	PullParent bool
	Auths      map[string]registry.AuthConfig
}

// Result is a successful build.
type Result struct {
	ID string
}

// StepError is a build step that failed with its command's exit code, which Docker passes on as the
// error's code.
type StepError struct {
	Msg  string
	Code int
}

func (e *StepError) Error() string { return e.Msg }

// Build builds the Dockerfile in the context tar (or, when src is not a tar, src is the Dockerfile and
// there is no context), then tags the result. Nothing is tagged when any step fails.
func (s *Service) Build(ctx context.Context, src io.Reader, opts Options, out io.Writer) (Result, error) {
	if out == nil {
		out = io.Discard
	}
	var bctx *buildContext
	var err error
	switch {
	case opts.SyncSession != "":
		bctx, err = s.openSynced(ctx, opts.SyncSession, src)
	case opts.Remote == "":
		bctx, err = openContext(ctx, s.cfg.Root, src, opts.Dockerfile)
	case IsGitURL(opts.Remote):
		bctx, err = openGitContext(ctx, s.cfg.Root, opts.Remote, opts.Dockerfile)
	default:
		err = errdefs.NotImplemented(fmt.Errorf("remote contexts other than git repositories are not supported yet: %s", opts.Remote))
	}
	if err != nil {
		return Result{}, err
	}
	defer bctx.Close()
	tags := make([]string, 0, len(opts.Tags))
	for _, t := range opts.Tags {
		n, err := normaliseTag(t)
		if err != nil {
			return Result{}, err
		}
		tags = append(tags, n)
	}
	b := &builder{svc: s, opts: opts, bctx: bctx, stepOut: out}
	if opts.SuppressOutput {
		b.stepOut = io.Discard
	}
	for _, ref := range opts.CacheFrom {
		img, err := s.cfg.Images.Get(ctx, ref)
		if errdefs.IsNotFound(err) && s.cfg.Pull != nil && !isImageID(ref) {
			// A cache source only a registry has is pulled, layers and history, so its steps can be
			// reused here (Docker's legacy builder needs it pulled by hand first).
			if perr := s.cfg.Pull(ctx, ref, opts.Auths, b.stepOut); perr == nil {
				img, err = s.cfg.Images.Get(ctx, ref)
			}
		}
		if err != nil {
			fmt.Fprintf(b.stepOut, "[Warning] cache source %s not found, skipping it\n", ref)
			continue
		}
		b.cacheFrom = append(b.cacheFrom, img)
	}
	id, err := b.run(ctx)
	s.touchAll(b.cacheUsed)
	if err != nil {
		return Result{}, err
	}
	if unused := b.unusedArgs(); len(unused) > 0 {
		sort.Strings(unused)
		fmt.Fprintf(b.stepOut, "[Warning] One or more build-args [%s] were not consumed\n", strings.Join(unused, " "))
	}
	fmt.Fprintf(b.stepOut, "Successfully built %s\n", shortID(id))
	for _, t := range tags {
		if err := s.cfg.Images.Tag(ctx, id, t); err != nil {
			return Result{}, err
		}
		fmt.Fprintf(b.stepOut, "Successfully tagged %s\n", familiar(t))
	}
	return Result{ID: id}, nil
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ExitCode is the failed command's exit code, which the docker CLI exits with.
func (e *StepError) ExitCode() int { return e.Code }
