package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// Load is `docker load`: it takes a docker-save archive (manifest.json; old per-layer-directory and new
// blobs/ layouts) or an OCI image layout archive (index.json, nested indexes, gzip layers), plain or
// compressed, holding one or more images. For each image it reports "Loaded image: <name:tag>" per tag,
// or "Loaded image ID: sha256:..." for an untagged one.
//
// The archive is spooled to disk under <Root>/tmp first: its members come in any order and a layer
// can be large, so it is never held in memory.
func (s *Service) Load(ctx context.Context, src io.Reader, progress func(line string)) error {
	if progress == nil {
		progress = func(string) {}
	}
	progress = s.loadEvents(progress)
	dir, err := os.MkdirTemp(filepath.Join(s.cfg.Root, "tmp"), "load-")
	if err != nil {
		return errdefs.System(err)
	}
	defer os.RemoveAll(dir)
	r, err := decompress(src)
	if err != nil {
		return err
	}
	if _, err := archive.Apply(ctx, dir, r, archive.ApplyOptions{NoDevices: true}); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid archive: %w", err))
	}
	l := &loader{s: s, dir: dir, progress: progress}
	if f, err := l.open(dockerManifestFile); err == nil {
		defer f.Close()
		return l.dockerArchive(ctx, f)
	}
	if f, err := l.open(ociIndexFile); err == nil {
		defer f.Close()
		return l.ociArchive(ctx, f)
	}
	return errdefs.InvalidParameter(errors.New("invalid archive: it holds neither a manifest.json nor an index.json"))
}

type loader struct {
	s        *Service
	dir      string
	progress func(string)
}

// open opens a member of the unpacked archive; symlinks inside it (old docker-save archives link
// duplicate layers) resolve within the archive only.
func (l *loader) open(name string) (*os.File, error) {
	fd, err := openInRoot(l.dir, name)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	return f, nil
}

func openInRoot(root, name string) (int, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(rfd)
	return unix.Openat2(rfd, strings.TrimPrefix(path.Clean("/"+name), "/"), &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
}

func (l *loader) readJSON(name string, v any) ([]byte, error) {
	f, err := l.open(name)
	if err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: %s: %w", name, err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: %s: %w", name, err))
	}
	return b, nil
}

func (l *loader) layerFile(name string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		f, err := l.open(name)
		if err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid archive: layer %s: %w", name, err))
		}
		return f, nil
	}
}

// store writes one image and reports it the way docker load does.
func (l *loader) store(ctx context.Context, configName string, layerNames []string, tagNames []string) error {
	var cfg ocispec.Image
	cfgBytes, err := l.readJSON(configName, &cfg)
	if err != nil {
		return err
	}
	if len(cfg.RootFS.DiffIDs) != len(layerNames) {
		return errdefs.InvalidParameter(fmt.Errorf("invalid archive: config %s lists %d layers, manifest %d", configName, len(cfg.RootFS.DiffIDs), len(layerNames)))
	}
	var tags []reference.Named
	for _, t := range tagNames {
		n, err := parseTag(t)
		if err != nil {
			return err
		}
		tags = append(tags, n)
	}
	in := newImage{Tags: tags, Config: func([]digest.Digest) ([]byte, error) { return cfgBytes, nil }}
	for i, name := range layerNames {
		in.Layers = append(in.Layers, layerSource{DiffID: cfg.RootFS.DiffIDs[i], Open: l.layerFile(name)})
	}
	id, moved, err := l.s.writeImage(ctx, in)
	if err != nil {
		return err
	}
	for _, m := range moved {
		l.progress(fmt.Sprintf("The image %s already exists, renaming the old one with ID %s to empty string", reference.FamiliarString(m.Ref), m.Prev))
	}
	for _, t := range tags {
		l.progress("Loaded image: " + reference.FamiliarString(t))
	}
	if len(tags) == 0 {
		l.progress("Loaded image ID: " + id.String())
	}
	return nil
}

func (l *loader) dockerArchive(ctx context.Context, f *os.File) error {
	var entries []dockerManifestEntry
	if err := json.NewDecoder(io.LimitReader(f, maxConfigSize)).Decode(&entries); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid archive: manifest.json: %w", err))
	}
	for _, e := range entries {
		if err := l.store(ctx, e.Config, e.Layers, e.RepoTags); err != nil {
			return err
		}
	}
	return nil
}

func blobPath(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid archive: digest %q: %w", d, err))
	}
	return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
}

func (l *loader) ociArchive(ctx context.Context, f *os.File) error {
	var index ocispec.Index
	if err := json.NewDecoder(io.LimitReader(f, maxConfigSize)).Decode(&index); err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid archive: index.json: %w", err))
	}
	found := 0
	for _, desc := range forHost(index.Manifests) {
		if err := l.ociDescriptor(ctx, desc, ociName(desc), 0, &found); err != nil {
			return err
		}
	}
	if found == 0 {
		return errdefs.InvalidParameter(errors.New("invalid archive: index.json names no image"))
	}
	return nil
}

// ociName is the reference an index entry names, if any: containerd's full-name annotation, or a
// ref.name that is a full reference (a bare tag like "latest" names nothing on its own).
func ociName(desc ocispec.Descriptor) string {
	if n := desc.Annotations[annotationImageName]; n != "" {
		return n
	}
	n := desc.Annotations[annotationRefName]
	if strings.ContainsAny(n, ":/") {
		if _, err := reference.ParseNormalizedNamed(n); err == nil {
			return n
		}
	}
	return ""
}

func (l *loader) ociDescriptor(ctx context.Context, desc ocispec.Descriptor, name string, depth int, found *int) error {
	if depth > 4 {
		return errdefs.InvalidParameter(errors.New("invalid archive: indexes nested too deeply"))
	}
	bp, err := blobPath(desc.Digest)
	if err != nil {
		return err
	}
	var probe struct {
		MediaType string               `json:"mediaType"`
		Manifests []ocispec.Descriptor `json:"manifests"`
		Config    ocispec.Descriptor   `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	if _, err := l.readJSON(bp, &probe); err != nil {
		return err
	}
	mt := desc.MediaType
	if mt == "" {
		mt = probe.MediaType
	}
	isIndex := mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerManifestList || (mt == "" && probe.Manifests != nil)
	if isIndex {
		for _, child := range forHost(probe.Manifests) {
			if n := ociName(child); n != "" {
				name = n
			}
			if err := l.ociDescriptor(ctx, child, name, depth+1, found); err != nil {
				return err
			}
		}
		return nil
	}
	if mt != ocispec.MediaTypeImageManifest && mt != mediaTypeDockerManifest && mt != "" {
		return nil // attestations, signatures and other artifacts
	}
	*found++
	cfgPath, err := blobPath(probe.Config.Digest)
	if err != nil {
		return err
	}
	var layers []string
	for _, ld := range probe.Layers {
		lp, err := blobPath(ld.Digest)
		if err != nil {
			return err
		}
		layers = append(layers, lp)
	}
	var tags []string
	if name != "" {
		tags = append(tags, name)
	}
	return l.store(ctx, cfgPath, layers, tags)
}

// forHost picks, from an index's entries, the ones for this host (linux/GOARCH) when there are any, so
// that a multi-platform index loads one image; entries without a platform always qualify.
func forHost(descs []ocispec.Descriptor) []ocispec.Descriptor {
	matches := func(p *ocispec.Platform) bool {
		return p == nil || (p.OS == "" || p.OS == "linux") && (p.Architecture == "" || p.Architecture == runtime.GOARCH)
	}
	var out []ocispec.Descriptor
	for _, d := range descs {
		if matches(d.Platform) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return descs
	}
	return out
}
