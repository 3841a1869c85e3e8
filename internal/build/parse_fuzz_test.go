package build

import (
	"io"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// FuzzParse feeds arbitrary Dockerfiles through our layer on top of BuildKit's parser: parsing, the
// ARGs before FROM, target and stage selection, base names, and the variable expansion of every
// instruction, with ENV and ARG values flowing into the next as they do in a build. Whatever the input,
// nothing panics and every error is the user's (InvalidParameter: a 400, never a 500). Seeds live in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, seed := range []struct{ dockerfile, target, arg string }{
		{"FROM busybox\nRUN echo hi\n", "", ""},
		{"ARG V=1\nFROM busybox:${V} AS base\nENV A=$V B=${A:-x}\nWORKDIR /a/$A\nFROM base\nCOPY --from=base /a /b\n", "base", "2"},
		{"# escape=`\nFROM scratch\nADD --chown=${U}:0 a `\n b /c/\nEXPOSE ${P:-80}/tcp\n", "", "x"},
		{"FROM ${NOPE}\n", "", ""},
		{"ARG A\nFROM $A\nARG A\nRUN --network=none echo ${A:?missing}\n", "", "busybox"},
		{"FROM busybox AS a\nFROM a AS b\nFROM b\nCOPY --from=1 / /\nHEALTHCHECK --interval=1s CMD true\nONBUILD RUN x\n", "0", ""},
	} {
		f.Add([]byte(seed.dockerfile), seed.target, seed.arg)
	}
	f.Fuzz(func(t *testing.T, dockerfile []byte, target, arg string) {
		b := &builder{
			opts:    Options{Target: target, BuildArgs: map[string]*string{"A": &arg, "V": &arg}},
			bctx:    &buildContext{dockerfile: dockerfile},
			stepOut: io.Discard,
		}
		userError := func(what string, err error) {
			if err != nil && !errdefs.IsInvalidParameter(err) {
				t.Fatalf("%s: %v is not a user error (kind %v)", what, err, errdefs.KindOf(err))
			}
		}
		_, needed, err := b.parse()
		userError("parse", err)
		if err != nil {
			return
		}
		for i := range b.stages {
			if !needed[i] {
				continue
			}
			if _, err := b.baseName(i); err != nil {
				userError("base name", err)
				continue
			}
			args := map[string]string{}
			var env []string
			for _, cmd := range b.stages[i].Commands {
				if err := b.expand(cmd, envList(args, env)); err != nil {
					userError(cmd.Name(), err)
					break
				}
				switch c := cmd.(type) {
				case *instructions.EnvCommand:
					for _, kv := range c.Env {
						env = setEnv(env, kv.Key, kv.Value)
					}
				case *instructions.ArgCommand:
					for _, kv := range c.Args {
						args[kv.Key] = b.argValue(kv)
					}
				}
			}
		}
	})
}
