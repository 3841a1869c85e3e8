package spec

import specs "github.com/opencontainers/runtime-spec/specs-go"

// Options is what the engine knows about a container when it is about to start it. Args and Env are final:
// the caller has already merged entrypoint with cmd and image env with user env.
type Options struct {
	ID             string
	Rootfs         string // absolute path of the mounted rootfs
	Args, Env      []string
	Cwd            string // default "/"
	User           string // Docker -u syntax: "", "name", "uid", "name:group", "uid:gid"
	GroupAdd       []string
	Hostname       string
	Tty, OpenStdin bool
	ReadonlyRootfs bool
	// Privileged gives the host's whole bounding set, every host device, no masked paths and a rw /sys.
	Privileged      bool
	CapAdd, CapDrop []string
	Ulimits         []Ulimit
	Resources       Resources
	CgroupsPath     string // e.g. "/berth/<id>"
	NetNSPath       string // "" = a new network namespace
	// HostNetwork shares the host's network namespace (--network host); NetNSPath is then ignored.
	HostNetwork bool
	Mounts      []specs.Mount
	ShmSize     int64 // bytes; default 64 MiB
	// NoNewPrivileges maps to --security-opt no-new-privileges.
	NoNewPrivileges bool
	// Seccomp is "" for Docker's default profile, SeccompUnconfined, or a JSON profile (see
	// SecurityOptions). A privileged container has none.
	Seccomp string
	// MaskedPaths and ReadonlyPaths replace the defaults when not nil (HostConfig's fields; the CLI
	// sends empty lists for --security-opt systempaths=unconfined). Ignored when privileged.
	MaskedPaths, ReadonlyPaths []string
	// Devices are --device entries; DeviceCgroupRules are --device-cgroup-rule ones.
	Devices           []Device
	DeviceCgroupRules []string
	// UIDMappings and GIDMappings, when set, give the container a user namespace of its own with these
	// maps (the daemon's --userns-remap).
	UIDMappings, GIDMappings []specs.LinuxIDMapping
}

// Ulimit is one --ulimit entry, e.g. {Name: "nofile", Soft: 1024, Hard: 2048}.
type Ulimit struct {
	Name       string
	Soft, Hard int64
}

// Resources are Docker's HostConfig resource fields, in Docker's units.
type Resources struct {
	Memory      int64 // bytes; 0 = unlimited
	MemorySwap  int64 // memory+swap in bytes; -1 = unlimited swap, 0 = twice Memory (Docker's default)
	NanoCPUs    int64 // 1e9 = one CPU
	CPUShares   int64
	CpusetCpus  string
	CpusetMems  string
	PidsLimit   *int64 // nil, 0 or -1 = unlimited
	BlkioWeight uint16
}

// DefaultShmSize is Docker's /dev/shm size when none is asked for.
const DefaultShmSize = 64 << 20
