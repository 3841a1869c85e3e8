package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/ctxsync"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	units "github.com/docker/go-units"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"
)

func newBuildCommand(e *env) *cobra.Command {
	var (
		tags, buildArgs, labels, cacheFrom []string
		file, target, network, iidfile     string
		noCache, quiet                     bool
		memory, memorySwap                 string
		cpuShares, cpuPeriod, cpuQuota     int64
		cpusetCpus                         string
		addHosts                           []string
		shmSize                            memBytes
		ulimits                            ulimitList
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			opts := build.ImageBuildOptions{
				Tags: tags, Dockerfile: file, NoCache: noCache, Target: target, NetworkMode: network,
				SuppressOutput: quiet, CacheFrom: cacheFrom, Remove: true, ForceRemove: true,
				BuildArgs: map[string]*string{}, Labels: map[string]string{}, Version: build.BuilderV1,
			}
			opts.CPUShares, opts.CPUPeriod, opts.CPUQuota, opts.CPUSetCPUs = cpuShares, cpuPeriod, cpuQuota, cpusetCpus
			opts.ExtraHosts, opts.ShmSize, opts.Ulimits = addHosts, int64(shmSize), []*container.Ulimit(ulimits)
			for flag, dst := range map[string]*int64{memory: &opts.Memory, memorySwap: &opts.MemorySwap} {
				if flag == "" {
					continue
				}
				if flag == "-1" {
					*dst = -1
					continue
				}
				n, err := units.RAMInBytes(flag)
				if err != nil {
					return fmt.Errorf("invalid size %q: %w", flag, err)
				}
				*dst = n
			}
			for _, a := range buildArgs {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					// "--build-arg NAME" takes the value from the environment, as docker does.
					if ev, set := e.lookup(k); set {
						opts.BuildArgs[k] = &ev
					} else {
						opts.BuildArgs[k] = nil
					}
					continue
				}
				opts.BuildArgs[k] = &v
			}
			if v, ok := e.lookup("SOURCE_DATE_EPOCH"); ok {
				if _, given := opts.BuildArgs["SOURCE_DATE_EPOCH"]; !given {
					opts.BuildArgs["SOURCE_DATE_EPOCH"] = &v
				}
			}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				opts.Labels[k] = v
			}
			var body io.Reader
			var id string
			synced := false
			if isGitURL(args[0]) {
				// The daemon clones the repository; the body stays empty.
				opts.RemoteContext = args[0]
			} else if args[0] == "-" {
				if file != "" && file != "-" {
					return errors.New("-f cannot be used with a context from stdin other than a Dockerfile")
				}
				opts.Dockerfile = ""
				body = e.In
			} else {
				var stdinDockerfile []byte
				if file == "-" {
					b, err := io.ReadAll(e.In)
					if err != nil {
						return err
					}
					stdinDockerfile = b
				}
				if v, _ := e.lookup("BERTH_BUILD_SYNC"); v != "0" {
					var err error
					if id, synced, err = e.syncBuild(ctx, args[0], file, stdinDockerfile, opts, quiet); err != nil {
						return err
					}
				}
				if !synced {
					rc, df, err := contextTar(args[0], file, stdinDockerfile)
					if err != nil {
						return fmt.Errorf("unable to prepare context: %w", err)
					}
					defer rc.Close()
					opts.Dockerfile, body = df, rc
				}
			}
			if !synced {
				err := e.do(ctx, func(c *client.Client) error {
					resp, err := c.ImageBuild(ctx, body, opts)
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					id, err = showBuild(resp.Body, e.Out, quiet)
					return err
				})
				if err != nil {
					return err
				}
			}
			if quiet {
				fmt.Fprintln(e.Out, id)
			} else {
				fmt.Fprintf(e.Out, "Image ID: %s\n", id)
			}
			if iidfile != "" {
				if err := os.WriteFile(iidfile, []byte(id), 0o644); err != nil {
					return fmt.Errorf("writing image ID file: %w", err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&tags, "tag", "t", nil, `Name and optionally a tag in the "name:tag" format`)
	f.StringVarP(&file, "file", "f", "", `Name of the Dockerfile (Default is "PATH/Dockerfile")`)
	f.StringArrayVar(&buildArgs, "build-arg", nil, "Set build-time variables")
	f.StringArrayVar(&labels, "label", nil, "Set metadata for an image")
	f.StringArrayVar(&cacheFrom, "cache-from", nil, "Images to consider as cache sources")
	f.BoolVar(&noCache, "no-cache", false, "Do not use cache when building the image")
	stringsFlag(f, &addHosts, "add-host", "", "Add a custom host-to-IP mapping (host:ip)")
	f.Var(&shmSize, "shm-size", "Size of /dev/shm")
	f.Var(&ulimits, "ulimit", "Ulimit options")
	f.StringVar(&target, "target", "", "Set the target build stage to build")
	f.StringVar(&network, "network", "", "Set the networking mode for the RUN instructions during build")
	f.StringVar(&iidfile, "iidfile", "", "Write the image ID to the file")
	f.BoolVarP(&quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	f.StringVarP(&memory, "memory", "m", "", "Memory limit for RUN steps")
	f.StringVar(&memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	f.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.Int64Var(&cpuPeriod, "cpu-period", 0, "Limit the CPU CFS (Completely Fair Scheduler) period")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "Limit the CPU CFS (Completely Fair Scheduler) quota")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.Bool("rm", true, "Remove intermediate containers after a successful build (always done)")
	f.Bool("force-rm", false, "Always remove intermediate containers (always done)")
	return cmd
}

// buildMessage is one message of POST /build's stream.
type buildMessage struct {
	Stream string          `json:"stream,omitempty"`
	Aux    json.RawMessage `json:"aux,omitempty"`
	Error  *struct {
		Code    int    `json:"code,omitempty"`
		Message string `json:"message,omitempty"`
	} `json:"errorDetail,omitempty"`
	ErrorMessage string `json:"error,omitempty"`
}

// showBuild prints the build's steps as "[n/m] INSTRUCTION", then the step's output, then
// " => CACHED <id>" or " => <duration> <id>". It returns the image ID from the final aux message.
func showBuild(r io.Reader, w io.Writer, quiet bool) (string, error) {
	dec := json.NewDecoder(r)
	var (
		id, partial string
		start       time.Time
		cached      bool
	)
	line := func(l string) {
		switch {
		case strings.HasPrefix(l, "Step "):
			num, text, _ := strings.Cut(strings.TrimPrefix(l, "Step "), " : ")
			fmt.Fprintf(w, "[%s] %s\n", num, text)
			start, cached = time.Now(), false
		case l == " ---> Using cache":
			cached = true
		case strings.HasPrefix(l, " ---> Running in "), strings.HasPrefix(l, " ---> Removed intermediate"):
		case strings.HasPrefix(l, " ---> "):
			img := strings.TrimPrefix(l, " ---> ")
			if cached {
				fmt.Fprintf(w, " => CACHED %s\n", img)
			} else {
				fmt.Fprintf(w, " => %.2fs %s\n", time.Since(start).Seconds(), img)
			}
		default:
			fmt.Fprintln(w, l)
		}
	}
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return "", err
		}
		if m.Error != nil && m.Error.Message != "" {
			if partial != "" {
				line(partial)
			}
			code := m.Error.Code
			if code == 0 {
				code = 1
			}
			return "", &StatusError{Status: m.Error.Message, StatusCode: code}
		}
		if m.ErrorMessage != "" {
			return "", errors.New(m.ErrorMessage)
		}
		if len(m.Aux) > 0 {
			var res build.Result
			if json.Unmarshal(m.Aux, &res) == nil && res.ID != "" {
				id = res.ID
			}
		}
		if m.Stream == "" || quiet {
			continue
		}
		partial += m.Stream
		for {
			l, rest, ok := strings.Cut(partial, "\n")
			if !ok {
				break
			}
			line(l)
			partial = rest
		}
	}
	if partial != "" && !quiet {
		line(partial)
	}
	if id == "" {
		return "", errors.New("the daemon did not report an image ID")
	}
	return id, nil
}

// contextTar streams the directory dir as a build context tar, leaving out what .dockerignore
// excludes (except the Dockerfile and .dockerignore, which the daemon needs). It returns the
// Dockerfile's name inside the tar: a -f outside the context, or one read from stdin (-f -), is added
// under a name of its own.
func contextTar(dir, dockerfile string, stdinDockerfile []byte) (io.ReadCloser, string, error) {
	pm, _, err := contextIgnore(dir)
	if err != nil {
		return nil, "", err
	}
	dfName, extra, err := dockerfileName(dir, dockerfile)
	if err != nil {
		return nil, "", err
	}
	keep := map[string]bool{dfName: true, ".dockerignore": true}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := ctxsync.Walk(dir, pm, keep, func(p string, _ fs.FileInfo) error {
			return archive.WriteEntry(tw, filepath.Join(dir, filepath.FromSlash(p)), p, false)
		})
		if err == nil && extra == "-" {
			err = addBytes(tw, dfName, stdinDockerfile)
		} else if err == nil && extra != "" {
			err = archive.WriteEntry(tw, extra, dfName, false)
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, dfName, nil
}

// contextIgnore reads the context directory's .dockerignore: its patterns and its bytes (nil when
// there is none).
func contextIgnore(dir string) (*patternmatcher.PatternMatcher, []byte, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, nil, err
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a directory", dir)
	}
	var patterns []string
	raw, err := os.ReadFile(filepath.Join(dir, ".dockerignore"))
	if err == nil {
		patterns, err = ignorefile.ReadAll(bytes.NewReader(raw))
		if err != nil {
			return nil, nil, fmt.Errorf("reading .dockerignore: %w", err)
		}
	} else {
		raw = nil
	}
	pm, err := patternmatcher.New(patterns)
	return pm, raw, err
}

// dockerfileName is the Dockerfile's name in the context and, when it is not in the context, where it
// comes from: "-" for stdin, or its absolute path.
func dockerfileName(dir, dockerfile string) (name, extra string, err error) {
	name = "Dockerfile"
	if dockerfile == "-" {
		name, extra = ".berth-dockerfile", "-"
	} else if dockerfile != "" {
		abs, _ := filepath.Abs(dockerfile)
		absDir, _ := filepath.Abs(dir)
		if rel, err := filepath.Rel(absDir, abs); err == nil && !strings.HasPrefix(rel, "..") {
			name = filepath.ToSlash(rel)
		} else {
			name, extra = ".berth-dockerfile", abs
		}
	} else if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
		if _, err2 := os.Stat(filepath.Join(dir, "dockerfile")); err2 == nil {
			name = "dockerfile"
		}
	}
	if extra == "" {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return "", "", fmt.Errorf("unable to evaluate symlinks in Dockerfile path: %w", err)
		}
	}
	return name, extra, nil
}

// isGitURL tells a git repository address from a context directory, as the daemon's builder does.
func isGitURL(s string) bool {
	u, _, _ := strings.Cut(s, "#")
	switch {
	case strings.HasPrefix(u, "git://"), strings.HasPrefix(u, "git@"), strings.HasPrefix(u, "ssh://"), strings.HasPrefix(u, "file://"):
		return true
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		return strings.HasSuffix(u, ".git")
	}
	return false
}

func addBytes(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), Format: tar.FormatPAX}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
