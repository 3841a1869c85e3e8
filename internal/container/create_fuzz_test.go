package container

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/docker/docker/api/types/container"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// FuzzCreateRequest decodes arbitrary POST /containers/create bodies as the API does and runs them
// through every check and translation that needs no live state: host config, ports, extra hosts,
// binds, --mount, tmpfs options, the merge with an image's config, and the runtime spec the container
// would start with. Nothing may panic, and every refusal must be the user's (InvalidParameter: a 400),
// never an internal error. Seeds live in testdata/fuzz/FuzzCreateRequest.
func FuzzCreateRequest(f *testing.F) {
	for _, seed := range []string{
		`{"Image":"busybox","Cmd":["true"]}`,
		`{"Image":"busybox","User":"berth:0","WorkingDir":"/w","Env":["A=1","B"],"HostConfig":{"Memory":33554432,` +
			`"NanoCpus":500000000,"CpusetCpus":"0","PidsLimit":50,"Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}],` +
			`"CapAdd":["NET_ADMIN"],"CapDrop":["ALL"],"Init":true,"ReadonlyRootfs":true,"ShmSize":1048576}}`,
		`{"Image":"x","HostConfig":{"Binds":["/a:/b:ro,z","vol:/c"],"Tmpfs":{"/t":"size=1m,mode=1777"},` +
			`"Mounts":[{"Type":"tmpfs","Target":"/m","TmpfsOptions":{"SizeBytes":1024}},{"Type":"bind","Source":"/s","Target":"/d","ReadOnly":true}]}}`,
		`{"Image":"x","ExposedPorts":{"80/tcp":{}},"HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080-8081"}]},` +
			`"ExtraHosts":["h:1.2.3.4","g:host-gateway"],"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3}}}`,
		`{"Image":"x","User":"nobody","HostConfig":{"GroupAdd":["12","nogroup"],"AutoRemove":true,"Ulimits":[{"Name":"bogus"}]}}`,
		`{"Image":"x","Entrypoint":[],"Cmd":null,"Healthcheck":{"Test":["CMD","true"],"Interval":1000000}}`,
	} {
		f.Add([]byte(seed))
	}
	rootfs, err := os.MkdirTemp("", "berth-fuzz-rootfs-")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(rootfs) })
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1000::/home/berth:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc", "group"), []byte("root:x:0:\nberth:x:1000:\nnogroup:x:65534:\n"), 0o644)
	image := dockerspec.DockerOCIImageConfig{}
	image.Cmd = []string{"sh"}
	image.Env = []string{"PATH=/bin"}
	image.WorkingDir = "/"

	f.Fuzz(func(t *testing.T, body []byte) {
		var req container.CreateRequest
		if json.Unmarshal(body, &req) != nil || req.Config == nil {
			return
		}
		userError := func(what string, err error) bool {
			if err != nil && !errdefs.IsInvalidParameter(err) {
				t.Fatalf("%s: %v is not a user error (kind %v)", what, err, errdefs.KindOf(err))
			}
			return err != nil
		}
		hc := req.HostConfig
		if hc == nil {
			hc = &container.HostConfig{}
		}
		if userError("host config", validateHostConfig(hc)) || userError("ports", validatePorts(hc.PortBindings)) {
			return
		}
		for _, h := range hc.ExtraHosts {
			if _, _, err := parseExtraHost(h); userError("extra host", err) {
				return
			}
		}
		for _, b := range hc.Binds {
			if _, err := parseBind(b); userError("bind", err) {
				return
			}
		}
		for _, m := range hc.Mounts {
			if _, _, err := parseMount(m); userError("mount", err) {
				return
			}
		}
		for _, o := range hc.Tmpfs {
			if userError("tmpfs", checkTmpfsOptions(o)) {
				return
			}
		}
		merged := mergeImageConfig(req.Config, image)
		argv := append(append([]string{}, merged.Entrypoint...), merged.Cmd...)
		if len(argv) == 0 {
			return
		}
		id := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		rec := &record{ID: id, Path: argv[0], Args: argv[1:], Config: merged, HostConfig: hc,
			ResolvPath: "/r", HostnamePath: "/h", HostsPath: "/hs"}
		s := &Service{cfg: Config{InitBinary: "/init"}}
		o, err := s.specOptions(rec, rootfs)
		if userError("spec options", err) {
			return
		}
		if _, err := spec.Generate(o); err != nil && !hc.Privileged {
			userError("spec", err)
		}
	})
}
