package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/go-connections/nat"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

var defaultShell = []string{"/bin/sh", "-c"}

// buildStage runs stage i from its FROM to its last instruction.
func (b *builder) buildStage(ctx context.Context, i int) (*stage, error) {
	s := b.stages[i]
	b.printStep(s.SourceCode)
	st, err := b.from(ctx, i)
	if err != nil {
		return nil, err
	}
	for _, cmd := range s.Commands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b.printStep(commandText(cmd))
		if err := b.dispatch(ctx, st, cmd, i); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func commandText(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return cmd.Name()
}

// from starts a stage on scratch, an earlier stage or an image, and runs the base image's ONBUILD triggers.
func (b *builder) from(ctx context.Context, i int) (*stage, error) {
	base, err := b.baseName(i)
	if err != nil {
		return nil, err
	}
	st := &stage{name: b.stages[i].Name, args: map[string]string{}}
	var created time.Time
	switch j, isStage := b.stageRef(base, i); {
	case isStage:
		prev := b.results[j]
		st.imageID, st.config, created = prev.imageID, cloneConfig(prev.config), prev.epoch
	case strings.EqualFold(base, "scratch"):
		created = time.Unix(0, 0)
	default:
		img, err := b.svc.cfg.Images.Get(ctx, base)
		if pull := b.svc.cfg.Pull; pull != nil && (b.opts.PullParent || errdefs.IsNotFound(err)) && !isImageID(base) {
			if perr := pull(ctx, base, b.opts.Auths, b.stepOut); perr != nil {
				return nil, perr
			}
			img, err = b.svc.cfg.Images.Get(ctx, base)
		}
		if err != nil {
			if errdefs.IsNotFound(err) {
				return nil, errdefs.NotFound(fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w", base, err))
			}
			return nil, err
		}
		st.imageID, st.config, created = img.ID, cloneConfig(img.Config.Config), img.Created
	}
	st.epoch = created.UTC().Truncate(time.Second)
	if v, ok := b.buildArg("SOURCE_DATE_EPOCH"); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid SOURCE_DATE_EPOCH %q: %w", v, err))
		}
		st.epoch = time.Unix(n, 0).UTC()
	}
	if st.imageID != "" {
		fmt.Fprintf(b.stepOut, " ---> %s\n", shortID(st.imageID))
	}
	if triggers := st.config.OnBuild; len(triggers) > 0 {
		st.config.OnBuild = nil
		fmt.Fprintf(b.stepOut, "# Executing %d build trigger", len(triggers))
		if len(triggers) > 1 {
			fmt.Fprint(b.stepOut, "s")
		}
		fmt.Fprintln(b.stepOut)
		for _, t := range triggers {
			res, err := parser.Parse(strings.NewReader(t))
			if err != nil {
				return nil, errdefs.InvalidParameter(fmt.Errorf("parsing ONBUILD trigger %q: %w", t, err))
			}
			for _, n := range res.AST.Children {
				cmd, err := instructions.ParseCommand(n)
				if err != nil {
					return nil, errdefs.InvalidParameter(fmt.Errorf("ONBUILD trigger %q: %w", t, err))
				}
				if err := b.dispatch(ctx, st, cmd, i); err != nil {
					return nil, err
				}
			}
		}
	}
	return st, nil
}

func (b *builder) buildArg(k string) (string, bool) {
	v, ok := b.opts.BuildArgs[k]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// cloneConfig deep-copies the fields steps edit, so stages never share maps or slices.
func cloneConfig(c dockerspec.DockerOCIImageConfig) dockerspec.DockerOCIImageConfig {
	out := c
	out.Env = append([]string(nil), c.Env...)
	out.Cmd = append([]string(nil), c.Cmd...)
	out.Entrypoint = append([]string(nil), c.Entrypoint...)
	out.OnBuild = append([]string(nil), c.OnBuild...)
	out.Shell = append([]string(nil), c.Shell...)
	if c.Labels != nil {
		out.Labels = map[string]string{}
		for k, v := range c.Labels {
			out.Labels[k] = v
		}
	}
	if c.ExposedPorts != nil {
		out.ExposedPorts = map[string]struct{}{}
		for k := range c.ExposedPorts {
			out.ExposedPorts[k] = struct{}{}
		}
	}
	if c.Volumes != nil {
		out.Volumes = map[string]struct{}{}
		for k := range c.Volumes {
			out.Volumes[k] = struct{}{}
		}
	}
	if len(out.Cmd) == 0 {
		out.Cmd = nil
	}
	if len(out.Entrypoint) == 0 {
		out.Entrypoint = nil
	}
	if len(out.OnBuild) == 0 {
		out.OnBuild = nil
	}
	if len(out.Shell) == 0 {
		out.Shell = nil
	}
	if len(out.Env) == 0 {
		out.Env = nil
	}
	return out
}

// env is what variables expand against in the stage: its image's env and its ARGs.
func (st *stage) env() []string { return envList(st.args, st.config.Env) }

// runEnv is a RUN container's environment: the image's env plus the stage's ARGs, which RUN sees but
// the image does not keep.
func (st *stage) runEnv() []string {
	out := append([]string{}, st.config.Env...)
	for _, k := range st.argKeys {
		if !hasEnv(out, k) {
			out = append(out, k+"="+st.args[k])
		}
	}
	return out
}

func (st *stage) shell() []string {
	if len(st.config.Shell) > 0 {
		return st.config.Shell
	}
	return defaultShell
}

// dispatch runs one instruction in st.
func (b *builder) dispatch(ctx context.Context, st *stage, cmd instructions.Command, stageIndex int) error {
	if err := b.expand(cmd, st.env()); err != nil {
		return err
	}
	nop := func(text string) error { return b.commitConfig(ctx, st, text) }
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			st.config.Env = setEnv(st.config.Env, kv.Key, kv.Value)
		}
		return nop(c.String())
	case *instructions.LabelCommand:
		if st.config.Labels == nil {
			st.config.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			st.config.Labels[kv.Key] = kv.Value
		}
		return nop(c.String())
	case *instructions.MaintainerCommand:
		return nop(c.String())
	case *instructions.CmdCommand:
		st.config.Cmd = b.commandLine(st, c.ShellDependantCmdLine)
		st.cmdSet = true
		return nop(fmt.Sprintf("CMD %s", jsonArgs(st.config.Cmd)))
	case *instructions.EntrypointCommand:
		st.config.Entrypoint = b.commandLine(st, c.ShellDependantCmdLine)
		if !st.cmdSet {
			st.config.Cmd = nil
		}
		return nop(fmt.Sprintf("ENTRYPOINT %s", jsonArgs(st.config.Entrypoint)))
	case *instructions.ExposeCommand:
		ports, _, err := nat.ParsePortSpecs(c.Ports)
		if err != nil {
			return errdefs.InvalidParameter(err)
		}
		if st.config.ExposedPorts == nil {
			st.config.ExposedPorts = map[string]struct{}{}
		}
		keys := make([]string, 0, len(ports))
		for p := range ports {
			st.config.ExposedPorts[string(p)] = struct{}{}
			keys = append(keys, string(p))
		}
		sort.Strings(keys)
		return nop("EXPOSE " + strings.Join(keys, " "))
	case *instructions.VolumeCommand:
		if st.config.Volumes == nil {
			st.config.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if v == "" {
				return errdefs.InvalidParameter(errors.New("VOLUME specified can not be an empty string"))
			}
			st.config.Volumes[v] = struct{}{}
		}
		return nop(fmt.Sprintf("VOLUME %s", jsonArgs(c.Volumes)))
	case *instructions.UserCommand:
		st.config.User = c.User
		return nop("USER " + c.User)
	case *instructions.WorkdirCommand:
		p := c.Path
		if !path.IsAbs(p) {
			p = path.Join("/", st.config.WorkingDir, p)
		}
		st.config.WorkingDir = path.Clean(p)
		return b.workdirStep(ctx, st)
	case *instructions.StopSignalCommand:
		st.config.StopSignal = c.Signal
		return nop("STOPSIGNAL " + c.Signal)
	case *instructions.HealthCheckCommand:
		h := *c.Health
		st.config.Healthcheck = &h
		return nop(fmt.Sprintf("HEALTHCHECK &{%v %q %q %q %q %d}", h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, h.Retries))
	case *instructions.ShellCommand:
		st.config.Shell = append([]string(nil), c.Shell...)
		return nop(fmt.Sprintf("SHELL %s", jsonArgs(c.Shell)))
	case *instructions.OnbuildCommand:
		st.config.OnBuild = append(st.config.OnBuild, c.Expression)
		return nop("ONBUILD " + c.Expression)
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			v, ok := "", false
			if bv, given := b.opts.BuildArgs[kv.Key]; given && bv != nil {
				v, ok = *bv, true
				b.usedArgs[kv.Key] = true
			} else if kv.Value != nil {
				v, ok = *kv.Value, true
			} else if mv, meta := b.metaArgs[kv.Key]; meta {
				v, ok = mv, true
			}
			if !ok {
				continue // declared without a value: stays undefined, as in Docker
			}
			if _, seen := st.args[kv.Key]; !seen {
				st.argKeys = append(st.argKeys, kv.Key)
			}
			st.args[kv.Key] = v
		}
		return nop(c.String())
	case *instructions.RunCommand:
		return b.runStep(ctx, st, c)
	case *instructions.CopyCommand:
		if c.Parents {
			return errdefs.NotImplemented(errors.New("COPY --parents is not supported yet"))
		}
		return b.copyStep(ctx, st, copySpec{
			cmd: "COPY", sd: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod, text: c.String(),
			exclude: c.ExcludePatterns,
		}, stageIndex)
	case *instructions.AddCommand:
		return b.copyStep(ctx, st, copySpec{
			cmd: "ADD", sd: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, text: c.String(),
			add: c.Unpack == nil || *c.Unpack, exclude: c.ExcludePatterns, checksum: c.Checksum,
		}, stageIndex)
	}
	return errdefs.NotImplemented(fmt.Errorf("the %s instruction is not supported", strings.ToUpper(cmd.Name())))
}

// commandLine is CMD's or ENTRYPOINT's argv: shell form runs through the stage's shell.
func (b *builder) commandLine(st *stage, c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return append(append([]string{}, st.shell()...), strings.Join(c.CmdLine, " "))
	}
	return append([]string{}, c.CmdLine...)
}

func jsonArgs(v []string) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// commitConfig makes a config-only step's image: no layer, one history entry.
func (b *builder) commitConfig(ctx context.Context, st *stage, text string) error {
	createdBy := strings.Join(st.shell(), " ") + " #(nop)  " + text
	return b.cachedStep(ctx, st, cacheKey(st.imageID, "nop", createdBy, st.config, nil), createdBy, func() (string, error) {
		return b.svc.cfg.Images.WriteChild(ctx, Child{Parent: st.imageID, Config: st.config, CreatedBy: createdBy, Created: st.epoch})
	})
}

// cachedStep moves st to the image key names in the cache, or to the one produce makes.
func (b *builder) cachedStep(ctx context.Context, st *stage, key, createdBy string, produce func() (string, error)) error {
	// The stage's time is part of every image it makes, so it is part of every key.
	key = cacheKey(key, "epoch", st.epoch.Format(time.RFC3339), dockerspec.DockerOCIImageConfig{}, nil)
	if !b.opts.NoCache {
		if id, ok := b.svc.cacheGet(ctx, key); ok {
			b.cacheUsed = append(b.cacheUsed, key)
			fmt.Fprintf(b.stepOut, " ---> Using cache\n ---> %s\n", shortID(id))
			st.imageID = id
			return nil
		}
		id, err := b.fromCacheSources(ctx, st, createdBy)
		if err != nil {
			return err
		}
		if id != "" {
			if err := b.svc.cachePut(key, id); err != nil {
				return err
			}
			fmt.Fprintf(b.stepOut, " ---> Using cache\n ---> %s\n", shortID(id))
			st.imageID = id
			return nil
		}
	}
	id, err := produce()
	if err != nil {
		return err
	}
	if err := b.svc.cachePut(key, id); err != nil {
		return err
	}
	fmt.Fprintf(b.stepOut, " ---> %s\n", shortID(id))
	st.imageID = id
	return nil
}

// runStep runs a RUN instruction in a container of the stage's image and commits what it changed.
func (b *builder) runStep(ctx context.Context, st *stage, c *instructions.RunCommand) error {
	if len(c.FlagsUsed) > 0 {
		return errdefs.NotImplemented(fmt.Errorf("RUN --%s needs BuildKit, which this builder is not", c.FlagsUsed[0]))
	}
	args := runArgs(c)
	var argv []string
	if c.PrependShell {
		argv = append(append([]string{}, st.shell()...), args...)
	} else {
		argv = args
	}
	if len(argv) == 0 {
		return errdefs.InvalidParameter(errors.New("RUN needs a command"))
	}
	env := st.runEnv()
	// The history shows the ARGs RUN saw, as Docker's "|2 A=1 B=2 /bin/sh -c ..." does.
	createdBy := strings.Join(argv, " ")
	if n := len(st.argKeys); n > 0 {
		pairs := make([]string, 0, n)
		for _, k := range st.argKeys {
			pairs = append(pairs, k+"="+st.args[k])
		}
		createdBy = fmt.Sprintf("|%d %s %s", n, strings.Join(pairs, " "), createdBy)
	}
	if st.imageID == "" {
		// A scratch stage without an image yet: make the empty one to run on.
		id, err := b.svc.cfg.Images.WriteChild(ctx, Child{Config: st.config, Created: st.epoch})
		if err != nil {
			return err
		}
		st.imageID = id
	}
	settings := struct {
		Argv              []string
		Env               []string
		User, Dir, Net    string
		ArgsInHistoryOnly string
	}{argv, env, st.config.User, st.config.WorkingDir, b.opts.NetworkMode, createdBy}
	key := cacheKey(st.imageID, "run", createdBy, st.config, settings)
	return b.cachedStep(ctx, st, key, createdBy, func() (string, error) {
		var id, cid string
		defer func() {
			if cid != "" {
				fmt.Fprintf(b.stepOut, " ---> Removed intermediate container %s\n", shortID(cid))
			}
		}()
		code, err := b.svc.cfg.Runner.Run(ctx, RunRequest{
			Image: st.imageID, Cmd: argv, Env: env, User: st.config.User, WorkingDir: st.config.WorkingDir,
			NetworkMode: b.opts.NetworkMode, Output: b.stepOut, Resources: b.opts.Resources, ExtraHosts: b.opts.ExtraHosts,
			Started: func(c string) {
				cid = c
				fmt.Fprintf(b.stepOut, " ---> Running in %s\n", shortID(c))
			},
		}, func(layer io.Reader) error {
			lr := clampTimes(layer, st.epoch)
			defer lr.Close()
			var err error
			id, err = b.svc.cfg.Images.WriteChild(ctx, Child{
				Parent: st.imageID, Layer: lr, Config: st.config, CreatedBy: createdBy, Created: st.epoch,
			})
			return err
		})
		if err != nil {
			return "", err
		}
		if code != 0 {
			return "", &StepError{Msg: fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(argv, " "), code), Code: code}
		}
		return id, nil
	})
}

// runArgs is RUN's command line with heredocs resolved as BuildKit does: a lone heredoc's body is the
// script, anything else goes to the shell whole.
func runArgs(c *instructions.RunCommand) []string {
	args := c.CmdLine
	if len(c.Files) == 0 || len(args) != 1 || !c.PrependShell {
		return args
	}
	if parser.MustParseHeredoc(args[0]) != nil {
		return []string{c.Files[0].Data}
	}
	full := args[0]
	for _, f := range c.Files {
		full += "\n" + f.Data + f.Name
	}
	return []string{full}
}

// isImageID tells an image ID ("sha256:<hex>" or 64 hex digits), which no registry serves, from a name.
func isImageID(ref string) bool {
	if strings.HasPrefix(ref, "sha256:") {
		return true
	}
	if len(ref) != 64 {
		return false
	}
	for _, c := range ref {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}
