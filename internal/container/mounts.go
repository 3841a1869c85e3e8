package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/spec"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// mountPoint is one of a container's mounts, resolved at create time from -v/Binds, --mount/Mounts,
// --volumes-from and the image's VOLUMEs, so that inspect shows it, start only has to bind it, and
// removal knows which anonymous volumes were the container's.
type mountPoint struct {
	Type        mount.Type
	Name        string `json:",omitempty"` // the volume's name
	Source      string `json:",omitempty"` // the host path of a bind
	Destination string
	Driver      string `json:",omitempty"`
	Mode        string `json:",omitempty"` // as the user wrote it ("ro", "z", "ro,rshared")
	RW          bool
	Propagation mount.Propagation `json:",omitempty"`
	// Anonymous volumes were made for this container; rm -v and --rm remove them.
	Anonymous bool `json:",omitempty"`
	// CopyData asks the next start to fill the volume from the image when the volume is empty; it is
	// cleared once that has happened, so later starts never look at the volume's content.
	CopyData bool `json:",omitempty"`
	// CreateSource creates a missing bind source, as -v does (--mount refuses one instead).
	CreateSource bool `json:",omitempty"`
	// Tmpfs holds a tmpfs mount's options (mount(8) syntax).
	Tmpfs string `json:",omitempty"`
}

// VolumeRequest asks for a volume for a container.
type VolumeRequest struct {
	Name      string // "" for a new anonymous volume
	Ref       string // the container's ID
	Driver    string
	Labels    map[string]string
	Options   map[string]string
	Anonymous bool
}

// VolumeStore is what the container service needs from the volume service.
type VolumeStore interface {
	// Acquire finds or creates a volume and counts the container as its user; it returns the name and
	// whether the volume was made now.
	Acquire(ctx context.Context, req VolumeRequest) (name string, created bool, err error)
	// Retain counts ref as a user of name (berthd calls it for every container when it starts).
	Retain(name, ref string)
	// Release stops counting ref as a user.
	Release(name, ref string)
	// Remove deletes an unused volume; a volume in use is an errdefs.Conflict.
	Remove(ctx context.Context, name string, force bool) error
	// Mount readies the volume for a starting container and returns its host path.
	Mount(ctx context.Context, name, ref string) (string, error)
	// Unmount says ref stopped running with the volume.
	Unmount(name, ref string)
	// Populate copies src (a directory in a container's root) into the volume if the volume is empty.
	Populate(name, src string) error
	// Path is the volume's data directory on the host.
	Path(name string) string
	// HasDevice reports whether the volume mounts a device or a host directory of the user's (the local
	// driver's type/device options) rather than keeping its data in the engine's storage.
	HasDevice(ctx context.Context, name string) bool
}

func invalidSpec(raw string, err error) error {
	return errdefs.InvalidParameter(fmt.Errorf("invalid volume specification: '%s': %w", raw, err))
}

func invalidMountConfig(t mount.Type, format string, a ...any) error {
	return fmt.Errorf("invalid mount config for type %q: %s", t, fmt.Sprintf(format, a...))
}

// checkDestination applies Docker's rules to a container path.
func checkDestination(t mount.Type, dst string) error {
	if !filepath.IsAbs(dst) {
		return invalidMountConfig(t, "invalid mount path: '%s' mount path must be absolute", dst)
	}
	if filepath.Clean(dst) == "/" {
		return invalidMountConfig(t, "invalid specification: destination can't be '/'")
	}
	return nil
}

var propagations = map[string]bool{"private": true, "rprivate": true, "shared": true, "rshared": true, "slave": true, "rslave": true}

// parseMode reads the mode part of -v host:ctr:mode, e.g. "ro", "rw,z", "ro,rshared", "nocopy".
func parseMode(mode string) (rw bool, prop mount.Propagation, nocopy bool, err error) {
	rw = true
	var seenRW, seenProp, seenLabel, seenCopy bool
	for _, m := range strings.Split(mode, ",") {
		switch {
		case m == "ro" || m == "rw":
			if seenRW {
				return false, "", false, fmt.Errorf("invalid mode: %s", mode)
			}
			seenRW, rw = true, m == "rw"
		case propagations[m]:
			if seenProp {
				return false, "", false, fmt.Errorf("invalid mode: %s", mode)
			}
			seenProp, prop = true, mount.Propagation(m)
		case m == "z" || m == "Z":
			if seenLabel {
				return false, "", false, fmt.Errorf("invalid mode: %s", mode)
			}
			seenLabel = true
		case m == "nocopy":
			if seenCopy {
				return false, "", false, fmt.Errorf("invalid mode: %s", mode)
			}
			seenCopy, nocopy = true, true
		default:
			return false, "", false, fmt.Errorf("invalid mode: %s", mode)
		}
	}
	return rw, prop, nocopy, nil
}

func isMode(s string) bool {
	_, _, _, err := parseMode(s)
	return err == nil
}

// parseBind reads one -v / HostConfig.Binds entry: [source:]destination[:mode].
func parseBind(raw string) (mountPoint, error) {
	var src, dst, mode string
	parts := strings.Split(raw, ":")
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		if isMode(parts[1]) {
			dst, mode = parts[0], parts[1]
		} else {
			src, dst = parts[0], parts[1]
		}
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return mountPoint{}, errdefs.InvalidParameter(fmt.Errorf("invalid volume specification: '%s'", raw))
	}
	mp := mountPoint{Destination: dst, RW: true, Mode: mode}
	switch {
	case src == "":
		mp.Type, mp.Anonymous = mount.TypeVolume, true
	case filepath.IsAbs(src):
		mp.Type, mp.Source, mp.CreateSource = mount.TypeBind, filepath.Clean(src), true
	default:
		mp.Type, mp.Name = mount.TypeVolume, src
	}
	if err := checkDestination(mp.Type, dst); err != nil {
		return mountPoint{}, invalidSpec(raw, err)
	}
	mp.Destination = filepath.Clean(dst)
	if mode != "" {
		rw, prop, nocopy, err := parseMode(mode)
		if err != nil {
			return mountPoint{}, errdefs.InvalidParameter(err)
		}
		if nocopy && mp.Type == mount.TypeBind {
			return mountPoint{}, errdefs.InvalidParameter(fmt.Errorf("invalid mode: %s", mode))
		}
		mp.RW, mp.Propagation, mp.CopyData = rw, prop, !nocopy
	} else {
		mp.CopyData = true
	}
	if mp.Type == mount.TypeBind {
		mp.CopyData = false
		if mp.Propagation == "" {
			mp.Propagation = mount.PropagationRPrivate
		}
	}
	return mp, nil
}

// parseMount reads one --mount / HostConfig.Mounts entry, with Docker's validation messages.
func parseMount(m mount.Mount) (mountPoint, *VolumeRequest, error) {
	bad := func(err error) (mountPoint, *VolumeRequest, error) {
		return mountPoint{}, nil, errdefs.InvalidParameter(err)
	}
	if err := checkDestination(m.Type, m.Target); err != nil {
		return bad(err)
	}
	mp := mountPoint{Type: m.Type, Destination: filepath.Clean(m.Target), RW: !m.ReadOnly}
	if m.ReadOnly {
		mp.Mode = "ro"
	}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return bad(invalidMountConfig(m.Type, "field Source must not be empty"))
		}
		if m.VolumeOptions != nil {
			return bad(invalidMountConfig(m.Type, "field VolumeOptions must not be specified"))
		}
		if m.TmpfsOptions != nil {
			return bad(invalidMountConfig(m.Type, "field TmpfsOptions must not be specified"))
		}
		if !filepath.IsAbs(m.Source) {
			return bad(invalidMountConfig(m.Type, "invalid mount path: '%s' mount path must be absolute", m.Source))
		}
		mp.Source = filepath.Clean(m.Source)
		mp.Propagation = mount.PropagationRPrivate
		if b := m.BindOptions; b != nil {
			if b.Propagation != "" {
				if !propagations[string(b.Propagation)] {
					return bad(invalidMountConfig(m.Type, "invalid propagation mode: %s", b.Propagation))
				}
				mp.Propagation = b.Propagation
			}
			mp.CreateSource = b.CreateMountpoint
		}
		if !mp.CreateSource {
			if _, err := os.Stat(mp.Source); err != nil {
				return bad(invalidMountConfig(m.Type, "bind source path does not exist: %s", mp.Source))
			}
		}
		return mp, nil, nil
	case mount.TypeVolume:
		if m.BindOptions != nil {
			return bad(invalidMountConfig(m.Type, "field BindOptions must not be specified"))
		}
		if m.TmpfsOptions != nil {
			return bad(invalidMountConfig(m.Type, "field TmpfsOptions must not be specified"))
		}
		req := &VolumeRequest{Name: m.Source, Anonymous: m.Source == ""}
		mp.Name, mp.Anonymous, mp.CopyData = m.Source, m.Source == "", true
		if v := m.VolumeOptions; v != nil {
			if v.Subpath != "" {
				return bad(invalidMountConfig(m.Type, "volume subpaths are not supported"))
			}
			mp.CopyData = !v.NoCopy
			req.Labels = v.Labels
			if v.DriverConfig != nil {
				req.Driver, req.Options = v.DriverConfig.Name, v.DriverConfig.Options
			}
		}
		return mp, req, nil
	case mount.TypeTmpfs:
		if m.Source != "" {
			return bad(invalidMountConfig(m.Type, "field Source must not be specified"))
		}
		if m.BindOptions != nil {
			return bad(invalidMountConfig(m.Type, "field BindOptions must not be specified"))
		}
		if m.VolumeOptions != nil {
			return bad(invalidMountConfig(m.Type, "field VolumeOptions must not be specified"))
		}
		var opts []string
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		if t := m.TmpfsOptions; t != nil {
			if t.SizeBytes < 0 {
				return bad(invalidMountConfig(m.Type, "invalid tmpfs size: %d", t.SizeBytes))
			}
			if t.SizeBytes > 0 {
				opts = append(opts, "size="+strconv.FormatInt(t.SizeBytes, 10))
			}
			if t.Mode != 0 {
				opts = append(opts, "mode="+strconv.FormatUint(uint64(unixMode(t.Mode)), 8))
			}
			for _, o := range t.Options {
				opts = append(opts, strings.Join(o, "="))
			}
		}
		if err := checkTmpfsOptions(strings.Join(opts, ",")); err != nil {
			return bad(err)
		}
		mp.Tmpfs = strings.Join(opts, ",")
		return mp, nil, nil
	}
	return bad(invalidMountConfig(m.Type, "mount type unknown"))
}

// unixMode converts a TmpfsOptions mode to the octal mode tmpfs wants. The docker CLI sends the raw
// octal bits (01777 for "tmpfs-mode=1777"); Go SDK users may set os.ModeSticky and friends instead.
func unixMode(m os.FileMode) uint32 {
	out := uint32(m) & 0o7777
	if m&os.ModeSticky != 0 {
		out |= 0o1000
	}
	if m&os.ModeSetgid != 0 {
		out |= 0o2000
	}
	if m&os.ModeSetuid != 0 {
		out |= 0o4000
	}
	return out
}

// tmpfsFlags are the mount options a tmpfs accepts besides its own key=value ones.
var tmpfsFlags = map[string]bool{
	"rw": true, "ro": true, "exec": true, "noexec": true, "suid": true, "nosuid": true, "dev": true, "nodev": true,
	"sync": true, "async": true, "dirsync": true, "atime": true, "noatime": true, "diratime": true,
	"nodiratime": true, "relatime": true, "norelatime": true, "strictatime": true, "nostrictatime": true,
	"mand": true, "nomand": true, "private": true, "rprivate": true, "shared": true, "rshared": true,
	"slave": true, "rslave": true,
}

var tmpfsKeys = map[string]bool{"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true, "mpol": true, "huge": true}

// checkTmpfsOptions rejects options tmpfs does not know, before anything is created (InvalidParameter).
func checkTmpfsOptions(opts string) error {
	if opts == "" {
		return nil
	}
	for _, o := range strings.Split(opts, ",") {
		k, v, hasValue := strings.Cut(o, "=")
		if hasValue {
			if !tmpfsKeys[k] {
				return errdefs.InvalidParameter(fmt.Errorf("invalid tmpfs option [%q]", o))
			}
			if k == "mode" {
				if _, err := strconv.ParseUint(v, 8, 32); err != nil {
					return errdefs.InvalidParameter(fmt.Errorf("invalid tmpfs option [%q]", o))
				}
			}
			continue
		}
		if !tmpfsFlags[k] {
			return errdefs.InvalidParameter(fmt.Errorf("invalid tmpfs option [%q]", o))
		}
	}
	return nil
}

func duplicate(dst string) error {
	return errdefs.InvalidParameter(fmt.Errorf("Duplicate mount point: %s", dst))
}

// resolveMounts turns a new container's Binds, Mounts, Tmpfs, VolumesFrom and VOLUMEs into its mount
// points, in Docker's order of precedence: --volumes-from, overridden by -v, then --mount (a clash with -v
// is an error), then the image's and -v's anonymous volumes where nothing else is mounted. Volumes are
// acquired for id (named ones created when missing); on error everything acquired is given back and
// volumes made here are removed, so a failed create leaves nothing behind. undo does the same for a
// create that fails later.
func (s *Service) resolveMounts(ctx context.Context, id string, cfg *container.Config, hc *container.HostConfig) (mps []mountPoint, undo func(), err error) {
	byDest := map[string]mountPoint{}
	var order []string
	put := func(mp mountPoint) {
		if _, ok := byDest[mp.Destination]; !ok {
			order = append(order, mp.Destination)
		}
		byDest[mp.Destination] = mp
	}
	for _, vf := range hc.VolumesFrom {
		ref, mode, _ := strings.Cut(vf, ":")
		rw := true
		switch mode {
		case "", "rw":
		case "ro":
			rw = false
		default:
			return nil, nil, errdefs.InvalidParameter(fmt.Errorf("invalid mode for volumes-from: %s", mode))
		}
		src, err := s.get(ref)
		if err != nil {
			return nil, nil, err
		}
		src.mu.Lock()
		from := append([]mountPoint(nil), src.rec.MountPoints...)
		src.mu.Unlock()
		for _, mp := range from {
			if mp.Type == mount.TypeTmpfs {
				continue
			}
			if mode != "" {
				mp.RW = rw
				mp.Mode = mode
			}
			mp.CopyData = false
			put(mp)
		}
	}
	binds := map[string]bool{}
	for _, raw := range hc.Binds {
		mp, err := parseBind(raw)
		if err != nil {
			return nil, nil, err
		}
		if binds[mp.Destination] {
			return nil, nil, duplicate(mp.Destination)
		}
		binds[mp.Destination] = true
		put(mp)
	}
	reqs := map[string]*VolumeRequest{}
	for _, m := range hc.Mounts {
		mp, req, err := parseMount(m)
		if err != nil {
			return nil, nil, err
		}
		if binds[mp.Destination] {
			return nil, nil, duplicate(mp.Destination)
		}
		binds[mp.Destination] = true
		put(mp)
		if req != nil {
			reqs[mp.Destination] = req
		}
	}
	for dst, opts := range hc.Tmpfs {
		if err := checkDestination(mount.TypeTmpfs, dst); err != nil {
			return nil, nil, errdefs.InvalidParameter(err)
		}
		if binds[filepath.Clean(dst)] {
			return nil, nil, duplicate(filepath.Clean(dst))
		}
		if err := checkTmpfsOptions(opts); err != nil {
			return nil, nil, errdefs.InvalidParameter(err)
		}
	}
	for dst := range cfg.Volumes {
		if err := checkDestination(mount.TypeVolume, dst); err != nil {
			return nil, nil, errdefs.InvalidParameter(err)
		}
		d := filepath.Clean(dst)
		if _, ok := byDest[d]; ok {
			continue
		}
		if _, ok := hc.Tmpfs[dst]; ok {
			continue
		}
		put(mountPoint{Type: mount.TypeVolume, Destination: d, RW: true, Anonymous: true, CopyData: true})
	}

	var acquired []string
	var created []string
	undo = func() {
		for _, n := range acquired {
			s.cfg.Volumes.Release(n, id)
		}
		for _, n := range created {
			_ = s.cfg.Volumes.Remove(context.WithoutCancel(ctx), n, true)
		}
	}
	for _, d := range order {
		mp := byDest[d]
		if mp.Type == mount.TypeVolume {
			if s.cfg.Volumes == nil {
				return nil, nil, errdefs.NotImplemented(errors.New("volumes are not available"))
			}
			req := VolumeRequest{Name: mp.Name, Anonymous: mp.Anonymous}
			if r := reqs[d]; r != nil {
				req = *r
			}
			req.Ref = id
			name, made, err := s.cfg.Volumes.Acquire(ctx, req)
			if err != nil {
				undo()
				return nil, nil, err
			}
			acquired = append(acquired, name)
			if made {
				created = append(created, name)
			}
			mp.Name = name
			mp.Driver = "local"
		}
		mps = append(mps, mp)
	}
	return mps, undo, nil
}

// releaseMounts gives back a removed container's volumes and, with removeAnonymous (rm -v, --rm),
// deletes its anonymous ones. A volume another container still uses (shared with --volumes-from) is
// kept, as in Docker.
func (s *Service) releaseMounts(ctx context.Context, r *record, removeAnonymous bool) {
	for _, mp := range r.MountPoints {
		if mp.Type != mount.TypeVolume || s.cfg.Volumes == nil {
			continue
		}
		s.cfg.Volumes.Release(mp.Name, r.ID)
		if !removeAnonymous || !mp.Anonymous {
			continue
		}
		if err := s.cfg.Volumes.Remove(ctx, mp.Name, true); err != nil && !errdefs.IsConflict(err) {
			s.log.Warn("removing anonymous volume", "volume", mp.Name, "container", r.ID, "err", err)
		}
	}
}

// startMounts readies a starting container's mounts and returns them as spec mounts, parents before
// children. It copies the image's content into a volume only on the volume's first use and when it is
// empty, and records that, so ordinary starts never look inside a volume. unmount undoes the Mount calls.
func (s *Service) startMounts(ctx context.Context, r *record, rootfs string) (out []specs.Mount, unmount func(), err error) {
	var mounted []string
	unmount = func() {
		for _, n := range mounted {
			s.cfg.Volumes.Unmount(n, r.ID)
		}
	}
	mps := append([]mountPoint(nil), r.MountPoints...)
	for dst, opts := range r.HostConfig.Tmpfs {
		mps = append(mps, mountPoint{Type: mount.TypeTmpfs, Destination: filepath.Clean(dst), RW: true, Tmpfs: opts})
	}
	sort.SliceStable(mps, func(i, j int) bool { return depth(mps[i].Destination) < depth(mps[j].Destination) })
	copied := false
	for _, mp := range mps {
		switch mp.Type {
		case mount.TypeTmpfs:
			opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
			if mp.Tmpfs != "" {
				opts = append(opts, strings.Split(mp.Tmpfs, ",")...)
			}
			if !mp.RW {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{Destination: mp.Destination, Type: "tmpfs", Source: "tmpfs", Options: opts})
			continue
		case mount.TypeBind:
			// A source may be a file (a socket, a config file); only a missing one is made, as a directory.
			_, err := os.Stat(mp.Source)
			switch {
			case err == nil:
			case mp.CreateSource && errors.Is(err, os.ErrNotExist):
				if err := os.MkdirAll(mp.Source, 0o755); err != nil {
					unmount()
					return nil, nil, fmt.Errorf("error while creating mount source path '%s': %w", mp.Source, err)
				}
			default:
				unmount()
				return nil, nil, errdefs.InvalidParameter(invalidMountConfig(mp.Type, "bind source path does not exist: %s", mp.Source))
			}
			out = append(out, bindMount(mp.Source, mp))
		case mount.TypeVolume:
			p, err := s.cfg.Volumes.Mount(ctx, mp.Name, r.ID)
			if err != nil {
				unmount()
				return nil, nil, err
			}
			mounted = append(mounted, mp.Name)
			if mp.CopyData {
				err := s.populateVolume(ctx, r, rootfs, mp)
				if err != nil {
					unmount()
					return nil, nil, fmt.Errorf("copying the image's content to volume %s: %w", mp.Name, err)
				}
				copied = true
			}
			if rm := s.remap(r); rm != nil {
				// The user's own device or directory is like a -v bind: its owners are not remapped, neither
				// through an idmapped mount (the container's root would be the host's root there) nor by a
				// chown. Without idmapped mounts a volume of ours holds host ids, and a fresh one becomes the
				// container root's.
				plain := s.cfg.Volumes.HasDevice(ctx, mp.Name)
				if !plain && !rm.IDMapped {
					err = shiftVolumeRoot(p, rm)
				} else if rm.IDMapped {
					p, err = s.remapVolume(r, rm, p, len(out), plain)
				}
				if err != nil {
					unmount()
					return nil, nil, fmt.Errorf("mounting volume %s for user namespaces: %w", mp.Name, err)
				}
			}
			out = append(out, bindMount(p, mp))
		}
	}
	if copied {
		for i := range r.MountPoints {
			r.MountPoints[i].CopyData = false
		}
	}
	return out, unmount, nil
}

func bindMount(src string, mp mountPoint) specs.Mount {
	prop := string(mp.Propagation)
	if prop == "" {
		prop = "rprivate"
	}
	opts := []string{"rbind", prop}
	if !mp.RW {
		opts = append(opts, "ro")
	}
	return specs.Mount{Destination: mp.Destination, Type: "bind", Source: src, Options: opts}
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// volumeNames lists the volumes a record references.
func volumeNames(r *record) []string {
	var out []string
	for _, mp := range r.MountPoints {
		if mp.Type == mount.TypeVolume {
			out = append(out, mp.Name)
		}
	}
	return out
}

// unmountVolumes tells the volume service a container's run ended.
func (s *Service) unmountVolumes(r *record) {
	if s.cfg.Volumes == nil {
		return
	}
	for _, n := range volumeNames(r) {
		s.cfg.Volumes.Unmount(n, r.ID)
	}
}

// apiMounts is the inspect and list view of a container's mounts.
func (s *Service) apiMounts(r *record) []container.MountPoint {
	out := []container.MountPoint{}
	for _, mp := range r.MountPoints {
		m := container.MountPoint{Type: mp.Type, Name: mp.Name, Source: mp.Source, Destination: mp.Destination,
			Driver: mp.Driver, Mode: mp.Mode, RW: mp.RW, Propagation: mp.Propagation}
		if mp.Type == mount.TypeVolume && s.cfg.Volumes != nil {
			m.Source = s.cfg.Volumes.Path(mp.Name)
		}
		out = append(out, m)
	}
	// The docker CLI sends -v binds in map order, so the recorded order means nothing: show a stable one.
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out
}

// populateVolume copies the image's content at the mount's destination into a new volume. A remapped
// container's rootfs shows files with their remapped owners, so its content is read from a plain
// read-only view of its layers instead, keeping the volume's files owned as in the image.
func (s *Service) populateVolume(ctx context.Context, r *record, rootfs string, mp mountPoint) error {
	if s.remap(r) != nil {
		dirs, err := s.layerDirs(ctx, r.ID)
		if err != nil {
			return err
		}
		if dirs.Overlay && len(dirs.Lowers) > 0 {
			tmp, err := os.MkdirTemp(s.cfg.ExecRoot, "populate-")
			if err != nil {
				return err
			}
			defer os.Remove(tmp)
			if err := mountReadOnlyView(tmp, dirs); err != nil {
				return err
			}
			defer s.cfg.Rootfs.Unmount(tmp)
			rootfs = tmp
		} else {
			rootfs = dirs.Upper
		}
	}
	src, err := spec.JoinInRoot(rootfs, mp.Destination)
	if err != nil {
		return err
	}
	return s.cfg.Volumes.Populate(mp.Name, src)
}
