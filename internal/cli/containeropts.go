package cli

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/go-connections/nat"
	"github.com/spf13/pflag"
)

// containerOptions holds the flags shared by `run` and `create`, as typed by the user; toConfig turns
// them into the API's create request.
type containerOptions struct {
	flags *pflag.FlagSet

	name        string
	pull        string
	env         []string
	envFiles    []string
	workdir     string
	user        string
	entrypoint  string
	hostname    string
	labels      []string
	labelFiles  []string
	stdin       bool
	tty         bool
	attach      []string
	memory      memBytes
	memSwap     memSwapBytes
	memReserve  memBytes
	cpus        nanoCPUs
	cpuShares   int64
	cpusetCPUs  string
	cpusetMems  string
	pidsLimit   optionalInt
	ulimits     ulimitList
	runtime     string
	privileged  bool
	capAdd      []string
	capDrop     []string
	readOnly    bool
	shmSize     memBytes
	stopSignal  string
	stopTimeout optionalInt
	restart     string
	network     string
	publish     []string
	expose      []string
	publishAll  bool
	volumes     []string
	mounts      mountList
	tmpfs       []string
	init        bool
	groupAdd    []string
	autoRemove  bool
	dns         []string
	addHosts    []string
	// Networking beyond --network and --dns.
	ip, macAddress, domainname string
	aliases, links             []string
	dnsSearch, dnsOptions      []string
	securityOpt                []string
	devices, deviceCgroupRules []string
	sysctls                    []string
	logDriver                  string
	logOpts                    []string
	volumesFrom                []string
	ipc                        string
	pid                        string
	userns                     string
	uts                        string
	oomKillOff                 bool

	healthCmd           string
	healthInterval      time.Duration
	healthTimeout       time.Duration
	healthStartPeriod   time.Duration
	healthStartInterval time.Duration
	healthRetries       int
	noHealthcheck       bool
}

// addContainerFlags registers docker's run/create flags on fs.
func addContainerFlags(fs *pflag.FlagSet) *containerOptions {
	o := &containerOptions{flags: fs}
	// -h is --hostname here, as in docker, so help gets no shorthand.
	fs.Bool("help", false, "Print usage")
	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.StringVar(&o.pull, "pull", "missing", `Pull image before running ("always", "missing", "never")`)
	stringsFlag(fs, &o.env, "env", "e", "Set environment variables")
	stringsFlag(fs, &o.envFiles, "env-file", "", "Read in a file of environment variables")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	stringsFlag(fs, &o.labels, "label", "l", "Set meta data on a container")
	stringsFlag(fs, &o.labelFiles, "label-file", "", "Read in a line delimited file of labels")
	fs.BoolVarP(&o.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	stringsFlag(fs, &o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memSwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Var(&o.memReserve, "memory-reservation", "Memory soft limit")
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.StringVar(&o.cpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Var(&o.pidsLimit, "pids-limit", "Tune container pids limit (set -1 for unlimited)")
	fs.Var(&o.ulimits, "ulimit", "Ulimit options")
	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	stringsFlag(fs, &o.capAdd, "cap-add", "", "Add Linux capabilities")
	stringsFlag(fs, &o.capDrop, "cap-drop", "", "Drop Linux capabilities")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.Var(&o.stopTimeout, "stop-timeout", "Timeout (in seconds) to stop a container")
	fs.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
	fs.StringVar(&o.network, "network", "", "Connect a container to a network")
	fs.StringVar(&o.network, "net", "", "Connect a container to a network")
	_ = fs.MarkHidden("net")
	stringsFlag(fs, &o.publish, "publish", "p", "Publish a container's port(s) to the host")
	stringsFlag(fs, &o.expose, "expose", "", "Expose a port or a range of ports")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	stringsFlag(fs, &o.volumes, "volume", "v", "Bind mount a volume")
	stringsFlag(fs, &o.tmpfs, "tmpfs", "", "Mount a tmpfs directory")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	stringsFlag(fs, &o.groupAdd, "group-add", "", "Add additional groups to join")
	fs.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")
	stringsFlag(fs, &o.dns, "dns", "", "Set custom DNS servers")
	stringsFlag(fs, &o.addHosts, "add-host", "", "Add a custom host-to-IP mapping (host:ip)")
	stringsFlag(fs, &o.dnsSearch, "dns-search", "", "Set custom DNS search domains")
	stringsFlag(fs, &o.dnsOptions, "dns-option", "", "Set DNS options")
	fs.StringVar(&o.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	stringsFlag(fs, &o.aliases, "network-alias", "", "Add network-scoped alias for the container")
	stringsFlag(fs, &o.links, "link", "", "Add link to another container")
	fs.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	stringsFlag(fs, &o.securityOpt, "security-opt", "", "Security Options")
	stringsFlag(fs, &o.devices, "device", "", "Add a host device to the container")
	stringsFlag(fs, &o.deviceCgroupRules, "device-cgroup-rule", "", "Add a rule to the cgroup allowed devices list")
	stringsFlag(fs, &o.sysctls, "sysctl", "", "Sysctl options")
	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	stringsFlag(fs, &o.logOpts, "log-opt", "", "Log driver options")
	stringsFlag(fs, &o.volumesFrom, "volumes-from", "", "Mount volumes from the specified container(s)")
	fs.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.pid, "pid", "", "PID namespace to use")
	fs.StringVar(&o.userns, "userns", "", "User namespace to use (\"host\" turns off the daemon's --userns-remap for this container)")
	fs.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	fs.BoolVar(&o.oomKillOff, "oom-kill-disable", false, "Disable OOM Killer")
	fs.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartInterval, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	return o
}

// createRequest is what ContainerCreate needs.
type createRequest struct {
	Config     *container.Config
	HostConfig *container.HostConfig
	Networking *network.NetworkingConfig
	Name       string
	Pull       string // always, missing (default) or never
}

// toConfig converts the flags plus the image and command into a create request. lookup resolves bare
// `-e KEY` from the client's environment, as docker does.
func (o *containerOptions) toConfig(image string, cmd []string, lookup func(string) (string, bool)) (*createRequest, error) {
	envs, err := readEnv(o.envFiles, o.env, lookup)
	if err != nil {
		return nil, err
	}
	labels, err := readLabels(o.labelFiles, o.labels)
	if err != nil {
		return nil, err
	}
	exposed, bindings, err := nat.ParsePortSpecs(o.publish)
	if err != nil {
		return nil, err
	}
	for _, e := range o.expose {
		proto, port := nat.SplitProtoPort(e)
		start, end, err := nat.ParsePortRange(port)
		if err != nil {
			return nil, fmt.Errorf("invalid range format for --expose: %s, error: %w", e, err)
		}
		for i := start; i <= end; i++ {
			p, err := nat.NewPort(proto, strconv.FormatUint(i, 10))
			if err != nil {
				return nil, err
			}
			exposed[p] = struct{}{}
		}
	}
	restart, err := parseRestartPolicy(o.restart)
	if err != nil {
		return nil, err
	}
	if o.autoRemove && restart.Name != container.RestartPolicyDisabled && restart.Name != "" {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	for _, a := range o.attach {
		switch strings.ToLower(a) {
		case "stdin", "stdout", "stderr":
		default:
			return nil, fmt.Errorf("invalid argument %q for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR", a)
		}
	}

	binds, anonVolumes := []string(nil), map[string]struct{}{}
	for _, v := range o.volumes {
		if host, rest, ok := strings.Cut(v, ":"); ok {
			// A relative host path (./data) is made absolute here, as docker's CLI does; the daemon
			// would take "data" for a volume name.
			if strings.HasPrefix(host, ".") {
				if abs, err := filepath.Abs(host); err == nil {
					v = abs + ":" + rest
				}
			}
			binds = append(binds, v)
		} else {
			anonVolumes[v] = struct{}{}
		}
	}
	var tmpfs map[string]string
	for _, t := range o.tmpfs {
		if tmpfs == nil {
			tmpfs = map[string]string{}
		}
		dst, opts, _ := strings.Cut(t, ":")
		tmpfs[dst] = opts
	}
	var sysctls map[string]string
	for _, s := range o.sysctls {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("sysctl '%s' is not allowed", s)
		}
		if sysctls == nil {
			sysctls = map[string]string{}
		}
		sysctls[k] = v
	}
	securityOpt, unmasked, err := parseSecurityOpts(o.securityOpt)
	if err != nil {
		return nil, err
	}
	var devices []container.DeviceMapping
	for _, d := range o.devices {
		m, err := parseDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, m)
	}
	var logOpts map[string]string
	for _, s := range o.logOpts {
		k, v, _ := strings.Cut(s, "=")
		if logOpts == nil {
			logOpts = map[string]string{}
		}
		logOpts[k] = v
	}

	attach := map[string]bool{}
	for _, a := range o.attach {
		attach[strings.ToLower(a)] = true
	}
	if o.stdin {
		attach["stdin"] = true
	}
	if len(o.attach) == 0 {
		attach["stdout"], attach["stderr"] = true, true
	}

	cfg := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		User:         o.user,
		AttachStdin:  attach["stdin"],
		AttachStdout: attach["stdout"],
		AttachStderr: attach["stderr"],
		ExposedPorts: exposed,
		Tty:          o.tty,
		OpenStdin:    o.stdin,
		Env:          envs,
		Image:        image,
		WorkingDir:   o.workdir,
		Labels:       labels,
		StopSignal:   o.stopSignal,
	}
	if cfg.OpenStdin && cfg.AttachStdin {
		cfg.StdinOnce = true
	}
	if len(cmd) > 0 {
		cfg.Cmd = strslice.StrSlice(cmd)
	}
	if o.entrypoint != "" {
		cfg.Entrypoint = strslice.StrSlice{o.entrypoint}
	} else if o.flags != nil && o.flags.Changed("entrypoint") {
		// A single empty string tells the daemon to drop the image's entrypoint.
		cfg.Entrypoint = strslice.StrSlice{""}
	}
	if len(anonVolumes) > 0 {
		cfg.Volumes = anonVolumes
	}
	if o.stopTimeout.set {
		t := int(o.stopTimeout.v)
		cfg.StopTimeout = &t
	}
	health, err := o.healthcheck()
	if err != nil {
		return nil, err
	}
	cfg.Healthcheck = health

	hc := &container.HostConfig{
		Binds:           binds,
		Mounts:          o.mounts,
		NetworkMode:     container.NetworkMode(o.network),
		PortBindings:    bindings,
		RestartPolicy:   restart,
		AutoRemove:      o.autoRemove,
		VolumesFrom:     o.volumesFrom,
		CapAdd:          o.capAdd,
		CapDrop:         o.capDrop,
		DNS:             o.dns,
		DNSSearch:       o.dnsSearch,
		DNSOptions:      o.dnsOptions,
		Links:           o.links,
		ExtraHosts:      o.addHosts,
		GroupAdd:        o.groupAdd,
		IpcMode:         container.IpcMode(o.ipc),
		PidMode:         container.PidMode(o.pid),
		UsernsMode:      container.UsernsMode(o.userns),
		UTSMode:         container.UTSMode(o.uts),
		Privileged:      o.privileged,
		PublishAllPorts: o.publishAll,
		ReadonlyRootfs:  o.readOnly,
		SecurityOpt:     securityOpt,
		Tmpfs:           tmpfs,
		Sysctls:         sysctls,
		Runtime:         o.runtime,
		ShmSize:         int64(o.shmSize),
		LogConfig:       container.LogConfig{Type: o.logDriver, Config: logOpts},
		Resources: container.Resources{
			Memory:            int64(o.memory),
			MemorySwap:        int64(o.memSwap),
			MemoryReservation: int64(o.memReserve),
			NanoCPUs:          int64(o.cpus),
			CPUShares:         o.cpuShares,
			CpusetCpus:        o.cpusetCPUs,
			CpusetMems:        o.cpusetMems,
			Ulimits:           []*container.Ulimit(o.ulimits),
			Devices:           devices,
			DeviceCgroupRules: o.deviceCgroupRules,
		},
	}
	if unmasked {
		hc.MaskedPaths, hc.ReadonlyPaths = []string{}, []string{}
	}
	if o.pidsLimit.set {
		p := o.pidsLimit.v
		hc.PidsLimit = &p
	}
	if o.oomKillOff {
		t := true
		hc.OomKillDisable = &t
	}
	if o.flags != nil && o.flags.Changed("init") {
		i := o.init
		hc.Init = &i
	}
	nc, err := o.networking()
	if err != nil {
		return nil, err
	}
	switch o.pull {
	case "always", "missing", "never":
	default:
		return nil, fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", o.pull)
	}
	return &createRequest{Config: cfg, HostConfig: hc, Networking: nc, Name: o.name, Pull: o.pull}, nil
}

// parseRestartPolicy accepts docker's forms: no, always, unless-stopped, on-failure[:max-retries].
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	var p container.RestartPolicy
	if s == "" {
		return p, nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	p.Name = container.RestartPolicyMode(name)
	switch p.Name {
	case container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		if hasCount {
			return p, fmt.Errorf("invalid restart policy format: maximum retry count can only be used with 'on-failure'")
		}
	case container.RestartPolicyOnFailure:
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil {
				return p, fmt.Errorf("invalid restart policy format: maximum retry count must be an integer")
			}
			if n < 0 {
				return p, fmt.Errorf("invalid restart policy format: maximum retry count cannot be negative")
			}
			p.MaximumRetryCount = n
		}
	default:
		return p, fmt.Errorf("invalid restart policy format: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", name)
	}
	return p, nil
}

// readEnv merges --env-file files (first) and -e values (after, so they win in the daemon), expanding
// bare names from the client's environment.
func readEnv(files, flags []string, lookup func(string) (string, bool)) ([]string, error) {
	var out []string
	for _, f := range files {
		lines, err := readKVFile(f, lookup)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	for _, e := range flags {
		v, err := expandEnv(e, lookup)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func expandEnv(e string, lookup func(string) (string, bool)) (string, error) {
	k, _, hasValue := strings.Cut(e, "=")
	if k == "" {
		return "", fmt.Errorf("invalid environment variable: %s", e)
	}
	if hasValue {
		return e, nil
	}
	if v, ok := lookup(k); ok {
		return k + "=" + v, nil
	}
	return e, nil
}

// readKVFile reads docker's env/label file format: one KEY=VALUE per line, '#' comments and blank lines
// skipped, leading whitespace trimmed, bare KEY taken from the environment when set (dropped if not).
func readKVFile(path string, lookup func(string) (string, bool)) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimLeft(sc.Text(), " \t")
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, hasValue := strings.Cut(line, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid environment variable: %s", line)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", k)
		}
		if hasValue {
			out = append(out, line)
			continue
		}
		if lookup != nil {
			if v, ok := lookup(k); ok {
				out = append(out, k+"="+v)
			}
		}
	}
	return out, sc.Err()
}

func readLabels(files, flags []string) (map[string]string, error) {
	var all []string
	for _, f := range files {
		// Labels never come from the environment: a bare key means an empty value.
		lines, err := readKVFile(f, func(k string) (string, bool) { return "", true })
		if err != nil {
			return nil, err
		}
		all = append(all, lines...)
	}
	all = append(all, flags...)
	if len(all) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(all))
	for _, l := range all {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid label format: %q", l)
		}
		m[k] = v
	}
	return m, nil
}

// healthcheck turns the --health-* flags into the container's healthcheck, with docker's checks: nil
// keeps the image's.
func (o *containerOptions) healthcheck() (*container.HealthConfig, error) {
	set := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 || o.healthStartPeriod != 0 ||
		o.healthStartInterval != 0 || o.healthRetries != 0
	if o.noHealthcheck {
		if set {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !set {
		return nil, nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--health-interval", o.healthInterval}, {"--health-timeout", o.healthTimeout},
		{"--health-start-period", o.healthStartPeriod}, {"--health-start-interval", o.healthStartInterval}} {
		if d.v < 0 {
			return nil, fmt.Errorf("%s cannot be negative", d.name)
		}
	}
	if o.healthRetries < 0 {
		return nil, errors.New("--health-retries cannot be negative")
	}
	hc := &container.HealthConfig{
		Interval: o.healthInterval, Timeout: o.healthTimeout, StartPeriod: o.healthStartPeriod,
		StartInterval: o.healthStartInterval, Retries: o.healthRetries,
	}
	if o.healthCmd != "" {
		hc.Test = []string{"CMD-SHELL", o.healthCmd}
	}
	return hc, nil
}

// networking puts --ip, --network-alias and --mac-address on the endpoint of the --network given, as
// the docker CLI does; they need a network to apply to.
func (o *containerOptions) networking() (*network.NetworkingConfig, error) {
	nc := &network.NetworkingConfig{}
	if o.ip == "" && len(o.aliases) == 0 && o.macAddress == "" {
		return nc, nil
	}
	name := o.network
	if name == "" || name == "default" {
		name = "default"
	}
	if name == "host" || name == "none" || strings.HasPrefix(name, "container:") {
		return nil, fmt.Errorf("--ip, --network-alias and --mac-address need a bridge network, not %s", name)
	}
	es := &network.EndpointSettings{Aliases: o.aliases, MacAddress: o.macAddress}
	if o.ip != "" {
		if net.ParseIP(o.ip).To4() == nil {
			return nil, fmt.Errorf("invalid IPv4 address: %s", o.ip)
		}
		es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: o.ip}
	}
	if o.macAddress != "" {
		if _, err := net.ParseMAC(o.macAddress); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", o.macAddress)
		}
	}
	nc.EndpointsConfig = map[string]*network.EndpointSettings{name: es}
	return nc, nil
}
