package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/go-connections/nat"
	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// parseRun parses args as `berth run` would and returns the create request.
func parseRun(t *testing.T, args []string, env map[string]string) (*createRequest, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(&bytes.Buffer{})
	o := addContainerFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	rest := fs.Args()
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return o.toConfig(rest[0], rest[1:], lookup)
}

func TestContainerFlagsToConfig(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("# comment\n\nA=1\n  B=two words\nFROMENV\nMISSING\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	labelFile := filepath.Join(dir, "labels")
	if err := os.WriteFile(labelFile, []byte("x=1\nbare\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clientEnv := map[string]string{"HOME": "/home/me", "FROMENV": "yes"}
	five := 5

	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, r *createRequest)
	}{
		{"env", []string{"-e", "A=1", "-e", "HOME", "-e", "UNSET", "--env=B=", "img"}, func(t *testing.T, r *createRequest) {
			want := []string{"A=1", "HOME=/home/me", "UNSET", "B="}
			if !reflect.DeepEqual(r.Config.Env, want) {
				t.Errorf("Env = %q, want %q", r.Config.Env, want)
			}
		}},
		{"env-file then -e", []string{"--env-file", envFile, "-e", "A=2", "img"}, func(t *testing.T, r *createRequest) {
			want := []string{"A=1", "B=two words", "FROMENV=yes", "A=2"}
			if !reflect.DeepEqual(r.Config.Env, want) {
				t.Errorf("Env = %q, want %q", r.Config.Env, want)
			}
		}},
		{"memory", []string{"-m", "512m", "--memory-swap", "-1", "--shm-size", "64m", "img"}, func(t *testing.T, r *createRequest) {
			if r.HostConfig.Memory != 512<<20 || r.HostConfig.MemorySwap != -1 || r.HostConfig.ShmSize != 64<<20 {
				t.Errorf("Memory=%d MemorySwap=%d ShmSize=%d", r.HostConfig.Memory, r.HostConfig.MemorySwap, r.HostConfig.ShmSize)
			}
		}},
		{"memory-swap size", []string{"--memory=1g", "--memory-swap=2g", "img"}, func(t *testing.T, r *createRequest) {
			if r.HostConfig.Memory != 1<<30 || r.HostConfig.MemorySwap != 2<<30 {
				t.Errorf("Memory=%d MemorySwap=%d", r.HostConfig.Memory, r.HostConfig.MemorySwap)
			}
		}},
		{"cpus", []string{"--cpus", "1.5", "-c", "512", "--cpuset-cpus", "0-1", "--cpuset-mems", "0", "img"}, func(t *testing.T, r *createRequest) {
			h := r.HostConfig
			if h.NanoCPUs != 1500000000 || h.CPUShares != 512 || h.CpusetCpus != "0-1" || h.CpusetMems != "0" {
				t.Errorf("NanoCPUs=%d CPUShares=%d CpusetCpus=%q CpusetMems=%q", h.NanoCPUs, h.CPUShares, h.CpusetCpus, h.CpusetMems)
			}
		}},
		{"entrypoint reset", []string{"--entrypoint", "", "img", "echo", "hi"}, func(t *testing.T, r *createRequest) {
			if !reflect.DeepEqual(r.Config.Entrypoint, strslice.StrSlice{""}) {
				t.Errorf("Entrypoint = %q, want one empty string", r.Config.Entrypoint)
			}
			if !reflect.DeepEqual(r.Config.Cmd, strslice.StrSlice{"echo", "hi"}) {
				t.Errorf("Cmd = %q", r.Config.Cmd)
			}
		}},
		{"entrypoint unset", []string{"img"}, func(t *testing.T, r *createRequest) {
			if r.Config.Entrypoint != nil || r.Config.Cmd != nil {
				t.Errorf("Entrypoint = %q Cmd = %q, want nil", r.Config.Entrypoint, r.Config.Cmd)
			}
		}},
		{"entrypoint set", []string{"--entrypoint=/bin/sh", "img", "-c", "x"}, func(t *testing.T, r *createRequest) {
			if !reflect.DeepEqual(r.Config.Entrypoint, strslice.StrSlice{"/bin/sh"}) || r.Config.Cmd[0] != "-c" {
				t.Errorf("Entrypoint = %q Cmd = %q", r.Config.Entrypoint, r.Config.Cmd)
			}
		}},
		{"flags stop at image", []string{"img", "-d", "--rm"}, func(t *testing.T, r *createRequest) {
			if !reflect.DeepEqual(r.Config.Cmd, strslice.StrSlice{"-d", "--rm"}) || r.HostConfig.AutoRemove {
				t.Errorf("Cmd = %q AutoRemove = %v", r.Config.Cmd, r.HostConfig.AutoRemove)
			}
		}},
		{"user workdir hostname", []string{"-u", "1000:1000", "-w", "/tmp", "-h", "box", "--name", "n1", "img"}, func(t *testing.T, r *createRequest) {
			c := r.Config
			if c.User != "1000:1000" || c.WorkingDir != "/tmp" || c.Hostname != "box" || r.Name != "n1" {
				t.Errorf("User=%q WorkingDir=%q Hostname=%q Name=%q", c.User, c.WorkingDir, c.Hostname, r.Name)
			}
		}},
		{"labels", []string{"-l", "a=b", "--label", "c", "--label-file", labelFile, "img"}, func(t *testing.T, r *createRequest) {
			want := map[string]string{"a": "b", "c": "", "x": "1", "bare": ""}
			if !reflect.DeepEqual(r.Config.Labels, want) {
				t.Errorf("Labels = %v, want %v", r.Config.Labels, want)
			}
		}},
		{"ulimit", []string{"--ulimit", "nofile=10:20", "--ulimit", "nproc=5", "img"}, func(t *testing.T, r *createRequest) {
			want := []*units.Ulimit{{Name: "nofile", Soft: 10, Hard: 20}, {Name: "nproc", Soft: 5, Hard: 5}}
			if !reflect.DeepEqual(r.HostConfig.Ulimits, want) {
				t.Errorf("Ulimits = %v", r.HostConfig.Ulimits)
			}
		}},
		{"ports", []string{"-p", "8080:80", "-p", "127.0.0.1:9000:90/udp", "-p", "443", "-p", "127.0.0.1::53", "--expose", "7000-7001", "img"}, func(t *testing.T, r *createRequest) {
			wantBind := nat.PortMap{
				"80/tcp":  {{HostIP: "", HostPort: "8080"}},
				"90/udp":  {{HostIP: "127.0.0.1", HostPort: "9000"}},
				"443/tcp": {{HostIP: "", HostPort: ""}},
				"53/tcp":  {{HostIP: "127.0.0.1", HostPort: ""}},
			}
			if !reflect.DeepEqual(r.HostConfig.PortBindings, wantBind) {
				t.Errorf("PortBindings = %v", r.HostConfig.PortBindings)
			}
			for _, p := range []nat.Port{"80/tcp", "90/udp", "443/tcp", "53/tcp", "7000/tcp", "7001/tcp"} {
				if _, ok := r.Config.ExposedPorts[p]; !ok {
					t.Errorf("ExposedPorts lacks %s: %v", p, r.Config.ExposedPorts)
				}
			}
		}},
		{"restart on-failure", []string{"--restart", "on-failure:3", "img"}, func(t *testing.T, r *createRequest) {
			want := container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}
			if r.HostConfig.RestartPolicy != want {
				t.Errorf("RestartPolicy = %+v", r.HostConfig.RestartPolicy)
			}
		}},
		{"restart always", []string{"--restart=always", "img"}, func(t *testing.T, r *createRequest) {
			if r.HostConfig.RestartPolicy.Name != container.RestartPolicyAlways {
				t.Errorf("RestartPolicy = %+v", r.HostConfig.RestartPolicy)
			}
		}},
		{"security and misc", []string{"--privileged", "--read-only", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL",
			"--group-add", "2000", "--init", "--runtime", "runc", "--network", "none", "--pids-limit", "0",
			"--stop-signal", "SIGUSR1", "--stop-timeout", "5", "--rm", "-i", "-t", "img"}, func(t *testing.T, r *createRequest) {
			h, c := r.HostConfig, r.Config
			if !h.Privileged || !h.ReadonlyRootfs || h.CapAdd[0] != "NET_ADMIN" || h.CapDrop[0] != "ALL" ||
				h.GroupAdd[0] != "2000" || h.Init == nil || !*h.Init || h.Runtime != "runc" || h.NetworkMode != "none" ||
				h.PidsLimit == nil || *h.PidsLimit != 0 || !h.AutoRemove {
				t.Errorf("HostConfig = %+v", h)
			}
			if c.StopSignal != "SIGUSR1" || !reflect.DeepEqual(c.StopTimeout, &five) || !c.OpenStdin || !c.Tty ||
				!c.AttachStdin || !c.StdinOnce || !c.AttachStdout {
				t.Errorf("Config = %+v", c)
			}
		}},
		{"mounts", []string{"--mount", "type=bind,src=/h,dst=/c,readonly,bind-propagation=rshared",
			"--mount", "source=v,target=/v,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs",
			"--mount", "type=tmpfs,destination=/t,tmpfs-size=1m,tmpfs-mode=1777", "img"}, func(t *testing.T, r *createRequest) {
			want := []mount.Mount{
				{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: "rshared"}},
				{Type: "volume", Source: "v", Target: "/v", VolumeOptions: &mount.VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"},
					DriverConfig: &mount.Driver{Options: map[string]string{"type": "tmpfs"}}}},
				{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}},
			}
			if !reflect.DeepEqual(r.HostConfig.Mounts, want) {
				t.Errorf("Mounts = %+v", r.HostConfig.Mounts)
			}
		}},
		{"pids-limit unset", []string{"img"}, func(t *testing.T, r *createRequest) {
			if r.HostConfig.PidsLimit != nil || r.HostConfig.Init != nil || r.Config.StopTimeout != nil {
				t.Errorf("unset optional fields were set: %+v", r.HostConfig)
			}
		}},
		{"volumes", []string{"-v", "/host:/ctr:ro", "-v", "/anon", "-v", "named:/data", "--tmpfs", "/run:size=1m", "img"}, func(t *testing.T, r *createRequest) {
			if !reflect.DeepEqual(r.HostConfig.Binds, []string{"/host:/ctr:ro", "named:/data"}) {
				t.Errorf("Binds = %q", r.HostConfig.Binds)
			}
			if _, ok := r.Config.Volumes["/anon"]; !ok || len(r.Config.Volumes) != 1 {
				t.Errorf("Volumes = %v", r.Config.Volumes)
			}
			if r.HostConfig.Tmpfs["/run"] != "size=1m" {
				t.Errorf("Tmpfs = %v", r.HostConfig.Tmpfs)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseRun(t, tc.args, clientEnv)
			if err != nil {
				t.Fatalf("parse %q: %v", tc.args, err)
			}
			tc.check(t, r)
		})
	}
}

func TestContainerFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-m", "12x", "img"}, `invalid argument "12x" for "-m, --memory" flag: invalid`},
		{[]string{"--memory-swap", "lots", "img"}, `invalid argument "lots" for "--memory-swap" flag`},
		{[]string{"--shm-size", "-5", "img"}, `invalid argument "-5" for "--shm-size" flag`},
		{[]string{"--cpus", "abc", "img"}, `invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number`},
		{[]string{"--ulimit", "nofile=20:10", "img"}, `invalid argument "nofile=20:10" for "--ulimit" flag`},
		{[]string{"--restart", "sometimes", "img"}, "invalid restart policy format"},
		{[]string{"--restart", "always:3", "img"}, "maximum retry count can only be used with 'on-failure'"},
		{[]string{"--restart", "always", "--rm", "img"}, "conflicting options: cannot specify both --restart and --rm"},
		{[]string{"-p", "notaport", "img"}, "invalid"},
		{[]string{"-e", "=x", "img"}, "invalid environment variable: =x"},
		{[]string{"--env-file", "/nonexistent/env", "img"}, "no such file or directory"},
		{[]string{"--mount", "type=bind,src=/a,dst=/b,bogus=1", "img"}, "unexpected key 'bogus' in 'bogus=1'"},
		{[]string{"--mount", "type=bind,src=/a", "img"}, "target is required"},
		{[]string{"--mount", "type=bind,src=/a,dst=/b,nokey", "img"}, "invalid field 'nokey' must be a key=value pair"},
		{[]string{"--mount", "type=tmpfs,dst=/b,volume-nocopy", "img"}, "cannot mix 'volume-*' options with mount type 'tmpfs'"},
		{[]string{"--mount", "type=tmpfs,dst=/b,tmpfs-size=lots", "img"}, "invalid value for tmpfs-size: lots"},
	}
	for _, tc := range cases {
		_, err := parseRun(t, tc.args, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want containing %q", tc.args, err, tc.want)
		}
	}
}

// TestRunUsageErrors drives the whole command line: docker's messages and exit 125 for run/create.
func TestRunUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run", "-m", "12x", "img"}, 125, "invalid argument \"12x\" for \"-m, --memory\" flag"},
		{[]string{"run", "--bogus", "img"}, 125, "unknown flag: --bogus\n\nUsage:  berth run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'berth run --help' for more information"},
		{[]string{"run"}, 125, "'berth run' requires at least 1 argument"},
		{[]string{"create", "--restart", "x", "img"}, 125, "berth: invalid restart policy format"},
		{[]string{"ps", "--bogus"}, 125, "unknown flag: --bogus"},
		{[]string{"start"}, 1, "'berth start' requires at least 1 argument"},
		{[]string{"rename", "a"}, 1, "'berth rename' requires 2 arguments"},
		{[]string{"nosuchcmd"}, 1, "unknown command"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		code := Run(context.Background(), append([]string{"-H", "unix:///nonexistent.sock"}, tc.args...), Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: exit %d stderr %q, want %d and %q", tc.args, code, errb.String(), tc.code, tc.want)
		}
	}
}

func TestHelpNeedsNoDaemon(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"image", "ls", "--help"}, {"-v"}} {
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, Streams{Out: &out, Err: &errb})
		if code != 0 || out.Len() == 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out.String(), errb.String())
		}
	}
}
