package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// builder is one build in progress.
type builder struct {
	svc     *Service
	opts    Options
	bctx    *buildContext
	stepOut io.Writer // step lines and RUN output; discarded with -q

	lex       *shell.Lex
	metaArgs  map[string]string // ARGs before the first FROM, after --build-arg
	metaCmds  []instructions.ArgCommand
	usedArgs  map[string]bool
	cacheFrom []Image // --cache-from images
	stages    []instructions.Stage
	results   []*stage // per stage index; nil until built
	step      int
	total     int
	cacheUsed []string // cache keys hit, recorded as used when the build ends
}

// stage is the state of the stage being built: its current image and config.
type stage struct {
	name    string
	imageID string // "" while a scratch stage has no image yet
	config  dockerspec.DockerOCIImageConfig
	epoch   time.Time
	args    map[string]string // ARGs declared in the stage, with their values
	argKeys []string
	cmdSet  bool // CMD given in this stage, so ENTRYPOINT keeps it
}

// parse reads the Dockerfile, expands the ARGs before the first FROM, and picks the target and the
// stages it needs. Every error it returns is the user's (InvalidParameter): FuzzParse holds it to that.
func (b *builder) parse() (target int, needed map[int]bool, err error) {
	res, err := parser.Parse(bytes.NewReader(b.bctx.dockerfile))
	if err != nil {
		return 0, nil, errdefs.InvalidParameter(fmt.Errorf("failed to parse Dockerfile: %w", err))
	}
	if len(res.AST.Children) == 0 {
		return 0, nil, errdefs.InvalidParameter(errors.New("the Dockerfile cannot be empty"))
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return 0, nil, errdefs.InvalidParameter(fmt.Errorf("dockerfile parse error: %w", err))
	}
	if len(stages) == 0 {
		return 0, nil, errdefs.InvalidParameter(errors.New("no build stage in current context"))
	}
	b.lex = shell.NewLex(res.EscapeToken)
	b.stages, b.metaCmds = stages, metaArgs
	b.results = make([]*stage, len(stages))
	b.usedArgs = map[string]bool{}

	b.metaArgs = map[string]string{}
	for i := range metaArgs {
		if err := b.expand(&metaArgs[i], envList(b.metaArgs, nil)); err != nil {
			return 0, nil, err
		}
		for _, kv := range metaArgs[i].Args {
			b.metaArgs[kv.Key] = b.argValue(kv)
		}
	}

	target = len(stages) - 1
	if b.opts.Target != "" {
		i, ok := instructions.HasStage(stages, b.opts.Target)
		if !ok {
			return 0, nil, errdefs.InvalidParameter(fmt.Errorf("failed to reach build target %s in Dockerfile", b.opts.Target))
		}
		target = i
	}
	if needed, err = b.neededStages(target); err != nil {
		return 0, nil, err
	}
	b.total = len(metaArgs)
	for i := range stages {
		if needed[i] {
			b.total += 1 + len(stages[i].Commands)
		}
	}
	if len(b.opts.Labels) > 0 {
		b.total++
	}
	return target, needed, nil
}

func (b *builder) run(ctx context.Context) (string, error) {
	target, needed, err := b.parse()
	if err != nil {
		return "", err
	}
	for i := range b.metaCmds {
		b.printStep(b.metaCmds[i].String())
	}
	for i := range b.stages {
		if !needed[i] {
			continue
		}
		st, err := b.buildStage(ctx, i)
		if err != nil {
			return "", err
		}
		b.results[i] = st
	}
	final := b.results[target]
	if len(b.opts.Labels) > 0 {
		keys := make([]string, 0, len(b.opts.Labels))
		for k := range b.opts.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		line := "LABEL"
		for _, k := range keys {
			line += fmt.Sprintf(" %q='%s'", k, b.opts.Labels[k])
		}
		b.printStep(line)
		if final.config.Labels == nil {
			final.config.Labels = map[string]string{}
		}
		for k, v := range b.opts.Labels {
			final.config.Labels[k] = v
		}
		if err := b.commitConfig(ctx, final, line); err != nil {
			return "", err
		}
	}
	if final.imageID == "" {
		return "", errdefs.InvalidParameter(errors.New("No image was generated. Is your Dockerfile empty?"))
	}
	return final.imageID, nil
}

// neededStages marks the target and every stage it depends on (FROM <stage>, COPY --from=<stage>).
func (b *builder) neededStages(target int) (map[int]bool, error) {
	needed := map[int]bool{}
	var mark func(i int) error
	mark = func(i int) error {
		if needed[i] {
			return nil
		}
		needed[i] = true
		deps := []string{}
		base, err := b.baseName(i)
		if err != nil {
			return err
		}
		deps = append(deps, base)
		for _, c := range b.stages[i].Commands {
			if cp, ok := c.(*instructions.CopyCommand); ok && cp.From != "" {
				deps = append(deps, cp.From)
			}
		}
		for _, d := range deps {
			if j, ok := b.stageRef(d, i); ok {
				if err := mark(j); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return needed, mark(target)
}

// stageRef finds an earlier stage by name or index.
func (b *builder) stageRef(ref string, before int) (int, bool) {
	for j := 0; j < before; j++ {
		if b.stages[j].Name != "" && strings.EqualFold(b.stages[j].Name, ref) {
			return j, true
		}
	}
	if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < before {
		return n, true
	}
	return -1, false
}

// baseName is stage i's FROM after expanding the ARGs declared before the first FROM.
func (b *builder) baseName(i int) (string, error) {
	res, err := b.lex.ProcessWordWithMatches(b.stages[i].BaseName, envGetter(envList(b.metaArgs, nil)))
	if err != nil {
		return "", errdefs.InvalidParameter(err)
	}
	for k := range res.Matched {
		b.usedArgs[k] = true
	}
	if res.Result == "" {
		return "", errdefs.InvalidParameter(fmt.Errorf("base name (%s) should not be blank", b.stages[i].BaseName))
	}
	return res.Result, nil
}

func (b *builder) printStep(line string) {
	b.step++
	fmt.Fprintf(b.stepOut, "Step %d/%d : %s\n", b.step, b.total, line)
}

// argValue is an ARG's value: --build-arg wins over the default.
func (b *builder) argValue(kv instructions.KeyValuePairOptional) string {
	if v, ok := b.opts.BuildArgs[kv.Key]; ok {
		b.usedArgs[kv.Key] = true
		if v != nil {
			return *v
		}
	}
	return kv.ValueString()
}

func (b *builder) unusedArgs() []string {
	var out []string
	for k := range b.opts.BuildArgs {
		if !b.usedArgs[k] && !builtinArgs[k] {
			out = append(out, k)
		}
	}
	return out
}

// builtinArgs may be passed without being declared, as in Docker.
var builtinArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true, "FTP_PROXY": true,
	"ftp_proxy": true, "NO_PROXY": true, "no_proxy": true, "ALL_PROXY": true, "all_proxy": true,
	"SOURCE_DATE_EPOCH": true,
}

// expand substitutes variables in a command's words, as the Dockerfile reference says each instruction does.
func (b *builder) expand(cmd any, env []string) error {
	get := envGetter(env)
	word := func(w string) (string, error) {
		res, err := b.lex.ProcessWordWithMatches(w, get)
		if err != nil {
			return "", err
		}
		for k := range res.Matched {
			b.usedArgs[k] = true
		}
		return res.Result, nil
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := e.Expand(word); err != nil {
			return errdefs.InvalidParameter(err)
		}
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		if err := e.ExpandRaw(word); err != nil {
			return errdefs.InvalidParameter(err)
		}
	}
	return nil
}

// envList is an image's env plus the stage's ARGs (env wins, as in Docker), as "k=v" strings.
func envList(args map[string]string, env []string) []string {
	out := append([]string{}, env...)
	for k, v := range args {
		if !hasEnv(env, k) {
			out = append(out, k+"="+v)
		}
	}
	return out
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

// setEnv replaces or appends key in env.
func setEnv(env []string, key, val string) []string {
	out := make([]string, 0, len(env)+1)
	found := false
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			if !found {
				out = append(out, key+"="+val)
				found = true
			}
			continue
		}
		out = append(out, e)
	}
	if !found {
		out = append(out, key+"="+val)
	}
	return out
}

// envGetter serves shell.Lex lookups from a "k=v" list.
type envGetter []string

func (e envGetter) Get(key string) (string, bool) {
	for i := len(e) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(e[i], "="); k == key {
			return v, true
		}
	}
	return "", false
}

func (e envGetter) Keys() []string {
	out := make([]string, 0, len(e))
	for _, kv := range e {
		k, _, _ := strings.Cut(kv, "=")
		out = append(out, k)
	}
	return out
}
