package container

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestMergeImageConfig(t *testing.T) {
	img := dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
		Entrypoint: []string{"/entry"}, Cmd: []string{"default"}, Env: []string{"PATH=/img", "A=1"},
		WorkingDir: "/app", User: "nobody", Labels: map[string]string{"from": "image", "x": "img"},
	}}
	cases := []struct {
		name           string
		cfg            container.Config
		wantArgv       []string
		wantEnv        []string
		wantUser, wDir string
	}{
		{"defaults", container.Config{}, []string{"/entry", "default"}, []string{"PATH=/img", "A=1"}, "nobody", "/app"},
		{"cmd replaces cmd", container.Config{Cmd: []string{"mine"}}, []string{"/entry", "mine"}, nil, "", ""},
		{"entrypoint drops image cmd", container.Config{Entrypoint: []string{"/other"}}, []string{"/other"}, nil, "", ""},
		{"empty entrypoint resets", container.Config{Entrypoint: []string{""}, Cmd: []string{"sh"}}, []string{"sh"}, nil, "", ""},
		{"env overrides by key", container.Config{Env: []string{"A=2", "B=3"}}, nil, []string{"PATH=/img", "A=2", "B=3"}, "", ""},
		{"user and workdir", container.Config{User: "root", WorkingDir: "/w"}, nil, nil, "root", "/w"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mergeImageConfig(&tc.cfg, img)
			argv := append(append([]string{}, m.Entrypoint...), m.Cmd...)
			if tc.wantArgv != nil && strings.Join(argv, " ") != strings.Join(tc.wantArgv, " ") {
				t.Errorf("argv %q, want %q", argv, tc.wantArgv)
			}
			if tc.wantEnv != nil && strings.Join(m.Env, ",") != strings.Join(tc.wantEnv, ",") {
				t.Errorf("env %q, want %q", m.Env, tc.wantEnv)
			}
			if tc.wantUser != "" && m.User != tc.wantUser {
				t.Errorf("user %q", m.User)
			}
			if tc.wDir != "" && m.WorkingDir != tc.wDir {
				t.Errorf("workdir %q", m.WorkingDir)
			}
		})
	}
	m := mergeImageConfig(&container.Config{Labels: map[string]string{"x": "mine"}}, img)
	if m.Labels["from"] != "image" || m.Labels["x"] != "mine" {
		t.Errorf("labels %v", m.Labels)
	}
	if env := mergeEnv(nil, []string{"A=1"}); env[len(env)-1] != "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Errorf("PATH not defaulted: %v", env)
	}
}

func TestValidateHostConfig(t *testing.T) {
	pids := int64(10)
	cases := []struct {
		name string
		hc   container.HostConfig
		want string // "" = valid
	}{
		{"ok", container.HostConfig{Resources: container.Resources{Memory: 64 << 20, PidsLimit: &pids}}, ""},
		{"tiny memory", container.HostConfig{Resources: container.Resources{Memory: 1 << 20}}, "Minimum memory limit allowed is 6MB"},
		{"swap below memory", container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}}, "Minimum memoryswap limit"},
		{"swap without memory", container.HostConfig{Resources: container.Resources{MemorySwap: 32 << 20}}, "always set the Memory limit"},
		{"too many cpus", container.HostConfig{Resources: container.Resources{NanoCPUs: 1000e9}}, "Range of CPUs"},
		{"bad cpuset", container.HostConfig{Resources: container.Resources{CpusetCpus: "0-x"}}, "Invalid value 0-x for cpuset cpus"},
		{"cpuset out of range", container.HostConfig{Resources: container.Resources{CpusetCpus: "0,999"}}, "Invalid value"},
		{"bad restart", container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}, "invalid restart policy"},
		{"rm with restart", container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}}, "AutoRemove"},
	}
	for _, tc := range cases {
		err := validateHostConfig(&tc.hc)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"KILL": syscall.SIGKILL, "sigterm": syscall.SIGTERM, "SIGHUP": syscall.SIGHUP, "9": syscall.SIGKILL, "usr1": syscall.SIGUSR1} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"NOPE", "0", "99", ""} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) accepted", bad)
		}
	}
}

func TestParseTimestamp(t *testing.T) {
	got, err := parseTimestamp("1700000000.5")
	if err != nil || !got.Equal(time.Unix(1700000000, 500000000)) {
		t.Errorf("fractional: %v %v", got, err)
	}
	if got, _ := parseTimestamp(""); !got.IsZero() {
		t.Errorf("empty should be zero")
	}
	if _, err := parseTimestamp("yesterday"); err == nil {
		t.Errorf("garbage accepted")
	}
}

func TestStatusText(t *testing.T) {
	now := time.Now()
	cases := map[string]state{
		"Up 5 seconds":                {Status: "running", StartedAt: now.Add(-5 * time.Second)},
		"Exited (3) 2 minutes ago":    {Status: "exited", ExitCode: 3, FinishedAt: now.Add(-2 * time.Minute)},
		"Created":                     {Status: "created"},
		"Exited (137) 10 seconds ago": {Status: "exited", ExitCode: 137, FinishedAt: now.Add(-10 * time.Second)},
	}
	for want, st := range cases {
		if got := statusText(st, now); got != want {
			t.Errorf("statusText = %q, want %q", got, want)
		}
	}
}

func TestStartErrorKinds(t *testing.T) {
	cases := map[string]int{
		`exec: "nope": executable file not found in $PATH`: 127,
		`exec: "/x": stat /x: no such file or directory`:   127,
		`exec: "/etc/passwd": permission denied`:           126,
		`mount failed`:                                     128,
	}
	for msg, code := range cases {
		err := startError(errString(msg))
		if !strings.Contains(err.Error(), msg) {
			t.Errorf("message lost: %v", err)
		}
		if got := exitCodeForStartError(err); got != code {
			t.Errorf("%q: exit code %d, want %d", msg, got, code)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
