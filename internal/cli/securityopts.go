package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/docker/docker/api/types/container"
)

// parseSecurityOpts checks --security-opt values as the docker CLI does and replaces a seccomp profile's
// file name by its content: the daemon may not see the CLI's files. systempaths=unconfined is not sent
// as an option: it becomes empty masked and read-only path lists (unmasked says whether it was given).
func parseSecurityOpts(opts []string) (out []string, unmasked bool, err error) {
	for _, opt := range opts {
		if opt == "systempaths=unconfined" {
			unmasked = true
			continue
		}
		out = append(out, opt)
	}
	for i, opt := range out {
		k, v, ok := strings.Cut(opt, "=")
		if !ok && k != "no-new-privileges" {
			k, v, ok = strings.Cut(opt, ":")
		}
		if (!ok || v == "") && k != "no-new-privileges" {
			return nil, false, fmt.Errorf("Invalid --security-opt: %q", opt)
		}
		if k != "seccomp" || v == "builtin" || v == "unconfined" {
			continue
		}
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, false, fmt.Errorf("opening seccomp profile (%s) failed: %v", v, err)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return nil, false, fmt.Errorf("compacting json for seccomp profile (%s) failed: %v", v, err)
		}
		out[i] = "seccomp=" + buf.String()
	}
	return out, unmasked, nil
}

// parseDevice reads --device HOST[:CONTAINER][:PERMISSIONS] with the docker CLI's rules and messages.
func parseDevice(spec string) (container.DeviceMapping, error) {
	var src, dst string
	perms := "rwm"
	arr := strings.SplitN(spec, ":", 4)
	switch len(arr) {
	case 3:
		perms = arr[2]
		dst = arr[1]
	case 2:
		if validDeviceMode(arr[1]) {
			perms = arr[1]
		} else {
			dst = arr[1]
		}
	case 1:
	default:
		return container.DeviceMapping{}, fmt.Errorf("invalid device specification: %s", spec)
	}
	src = arr[0]
	if dst == "" {
		dst = src
	}
	if !validDeviceMode(perms) {
		return container.DeviceMapping{}, fmt.Errorf("bad mode specified: %s", perms)
	}
	for _, p := range []string{src, dst} {
		if !path.IsAbs(p) {
			return container.DeviceMapping{}, fmt.Errorf("%s is not an absolute path", p)
		}
	}
	return container.DeviceMapping{PathOnHost: src, PathInContainer: dst, CgroupPermissions: perms}, nil
}

// validDeviceMode reports whether mode is a non-empty set of r, w and m, each at most once.
func validDeviceMode(mode string) bool {
	if mode == "" || len(mode) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}
