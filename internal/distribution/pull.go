package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/reference"
	"github.com/docker/docker/api/types/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of Docker's registry v2 schema 2, which registries serve next to the OCI ones.
const (
	mediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mediaDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaDockerSchema1  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

var acceptManifests = strings.Join([]string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	mediaDockerManifest, mediaDockerList}, ", ")

// maxManifestSize bounds what is read into memory for a manifest or config.
const maxManifestSize = 4 << 20
const maxConfigSize = 64 << 20

// PullOptions are the parts of a pull request besides the reference.
type PullOptions struct {
	Auth *registry.AuthConfig
	// AllTags pulls every tag of a repository named without tag or digest (the API's empty tag).
	AllTags  bool
	Platform *ocispec.Platform // nil: linux and this machine's architecture
}

// Pull fetches ref (tag or digest; a bare name means :latest) and stores it. It returns the image ID.
func (s *Service) Pull(ctx context.Context, ref string, opts PullOptions, out Progress) (digest.Digest, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", err))
	}
	if reference.IsNameOnly(n) && opts.AllTags {
		return "", s.pullAllTags(ctx, n, opts, out)
	}
	n = reference.TagNameOnly(n)
	p := newProgress(out)
	var lastErr error
	for _, ep := range s.endpoints(n, false) {
		id, err := s.pullFrom(ctx, ep, n, opts, p)
		if err == nil {
			return id, nil
		}
		lastErr = err
		// A mirror that fails is skipped; the origin's error is the one to report.
		if !ep.mirror || ctx.Err() != nil {
			break
		}
	}
	return "", lastErr
}

// pulled is a manifest resolved down to one image.
type pulled struct {
	manifest    ocispec.Manifest
	topDigest   digest.Digest // what the reference resolved to: the index's digest for a multi-arch image
	config      []byte
	configDesc  ocispec.Descriptor
	diffIDs     []digest.Digest
	schemaLabel string
}

func (s *Service) pullFrom(ctx context.Context, ep endpoint, n reference.Named, opts PullOptions, p *progress) (digest.Digest, error) {
	path := reference.Path(n)
	r, err := s.open(ctx, ep, path, opts.Auth, false)
	if err != nil {
		return "", err
	}
	tagged, isTagged := n.(reference.Tagged)
	canonical, isDigested := n.(reference.Canonical)
	ident := ""
	switch {
	case isDigested:
		ident = canonical.Digest().String()
	case isTagged:
		ident = tagged.Tag()
	}
	img, err := s.resolve(ctx, r, n, ident, opts.Platform)
	if err != nil {
		return "", err
	}
	if isTagged {
		p.status(tagged.Tag(), "Pulling from "+path)
	} else {
		p.status(shortDigest(canonical.Digest()), "Pulling from "+path)
	}

	layers := img.manifest.Layers
	present := s.cfg.Images.LayersPresent(ctx, img.diffIDs)
	pullCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, s.cfg.MaxDownloads)
	var wg sync.WaitGroup
	downloads := make([]*download, len(layers))
	remote := make([]image.RemoteLayer, len(layers))
	for i, l := range layers {
		id := shortDigest(l.Digest)
		remote[i].DiffID = img.diffIDs[i]
		if present[i] {
			// A blob an earlier, failed pull left behind is of no more use.
			os.Remove(blobFile(s.pulls, l.Digest))
			p.status(id, "Already exists")
			continue
		}
		if l.Size <= 0 {
			return "", errdefs.InvalidParameter(fmt.Errorf("manifest %s: layer %s has no size", img.topDigest, l.Digest))
		}
		if err := l.Digest.Validate(); err != nil {
			return "", errdefs.InvalidParameter(fmt.Errorf("manifest %s: %w", img.topDigest, err))
		}
		p.status(id, "Pulling fs layer")
		d := newDownload(s.pulls, l.Digest, l.Size)
		downloads[i] = d
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-pullCtx.Done():
				d.finish(transient(pullCtx.Err()))
				return
			}
			defer func() { <-sem }()
			unlock := s.lockBlob(l.Digest)
			defer unlock()
			d.run(pullCtx, httpFetch(r.client, r.base+"/blobs/"+l.Digest.String(), l.Size), func(have, total int64) {
				p.bytes(id, "Downloading", have, total)
			})
			if d.err == nil {
				p.status(id, "Verifying Checksum")
				p.status(id, "Download complete")
			}
		}()
		remote[i].Open = func() (io.ReadCloser, error) {
			f, err := d.follow(func(off, total int64) { p.bytes(id, "Extracting", off, total) })
			if err != nil {
				return nil, err
			}
			return &doneReader{follower: f, done: func() { p.status(id, "Pull complete") }}, nil
		}
	}

	var tag reference.Named
	if isTagged && !isDigested {
		tag = n
	}
	canon, err := reference.WithDigest(reference.TrimNamed(n), img.topDigest)
	if err != nil {
		return "", errdefs.InvalidParameter(err)
	}
	had := tag != nil && s.cfg.Images.Resolved(tag) == img.configDesc.Digest
	if isDigested && !isTagged {
		had = s.cfg.Images.Resolved(n) == img.configDesc.Digest
	}
	id, err := s.cfg.Images.StoreRemote(pullCtx, img.config, remote, tag, canon)
	cancel()
	wg.Wait()
	for _, d := range downloads {
		// After a failed pull every good byte stays for the next one to resume from or unpack again
		// (layers unpacked side by side are dropped when one of them fails).
		if d != nil && (err == nil || (d.err != nil && !isTransient(d.err))) {
			os.Remove(d.path)
		}
	}
	if err != nil {
		for _, d := range downloads {
			if d != nil && d.err != nil && !errors.Is(d.err, context.Canceled) {
				return "", pullError(n, d.err)
			}
		}
		return "", err
	}
	p.line("Digest: %s", img.topDigest)
	if had {
		p.line("Status: Image is up to date for %s", reference.FamiliarString(n))
	} else {
		p.line("Status: Downloaded newer image for %s", reference.FamiliarString(n))
	}
	return id, nil
}

// doneReader reports when the unpacker has read a layer to its verified end.
type doneReader struct {
	*follower
	done func()
	once sync.Once
}

func (r *doneReader) Read(b []byte) (int, error) {
	n, err := r.follower.Read(b)
	if err == io.EOF {
		r.once.Do(r.done)
	}
	return n, err
}

func pullError(n reference.Named, err error) error {
	if isTransient(err) {
		return errdefs.Unavailable(fmt.Errorf("pull of %s interrupted (run the pull again to resume): %w", reference.FamiliarString(n), err))
	}
	return err
}

// resolve fetches the manifest ident names (an index picks this platform's image) and the config.
func (s *Service) resolve(ctx context.Context, r *repo, n reference.Named, ident string, platform *ocispec.Platform) (*pulled, error) {
	mt, body, dg, err := r.getManifest(ctx, ident)
	if err != nil {
		return nil, manifestError(n, err)
	}
	if c, ok := n.(reference.Canonical); ok && dg != c.Digest() {
		return nil, errdefs.InvalidParameter(fmt.Errorf("manifest verification failed for digest %s", c.Digest()))
	}
	top := dg
	if mt == ocispec.MediaTypeImageIndex || mt == mediaDockerList {
		var idx ocispec.Index
		if err := json.Unmarshal(body, &idx); err != nil {
			return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image index %s: %w", dg, err))
		}
		want := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
		if platform != nil && platform.Architecture != "" {
			want = *platform
		}
		var pick *ocispec.Descriptor
		for i, m := range idx.Manifests {
			if m.Platform != nil && m.Platform.OS == want.OS && m.Platform.Architecture == want.Architecture &&
				(want.Variant == "" || m.Platform.Variant == want.Variant) {
				pick = &idx.Manifests[i]
				break
			}
		}
		if pick == nil {
			return nil, errdefs.NotFound(fmt.Errorf("no matching manifest for %s/%s in the manifest list entries", want.OS, want.Architecture))
		}
		mt, body, dg, err = r.getManifest(ctx, pick.Digest.String())
		if err != nil {
			return nil, manifestError(n, err)
		}
		if dg != pick.Digest {
			return nil, errdefs.InvalidParameter(fmt.Errorf("manifest verification failed for digest %s", pick.Digest))
		}
	}
	switch mt {
	case ocispec.MediaTypeImageManifest, mediaDockerManifest, "":
	case mediaDockerSchema1, "application/vnd.docker.distribution.manifest.v1+json":
		return nil, errdefs.NotImplemented(fmt.Errorf("%s uses Docker image manifest schema 1, which is not supported; push it again with a current client", reference.FamiliarString(n)))
	default:
		return nil, errdefs.InvalidParameter(fmt.Errorf("unsupported manifest media type %q", mt))
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid manifest %s: %w", dg, err))
	}
	if m.Config.Size > maxConfigSize {
		return nil, errdefs.InvalidParameter(fmt.Errorf("image config %s is too large (%d bytes)", m.Config.Digest, m.Config.Size))
	}
	cfg, err := r.getBlob(ctx, m.Config)
	if err != nil {
		return nil, err
	}
	var ic ocispec.Image
	if err := json.Unmarshal(cfg, &ic); err != nil {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid image config %s: %w", m.Config.Digest, err))
	}
	if len(ic.RootFS.DiffIDs) != len(m.Layers) {
		return nil, errdefs.InvalidParameter(fmt.Errorf("image config %s lists %d layers, manifest %d", m.Config.Digest, len(ic.RootFS.DiffIDs), len(m.Layers)))
	}
	for _, l := range m.Layers {
		if strings.Contains(l.MediaType, "foreign") || strings.Contains(l.MediaType, "nondistributable") {
			return nil, errdefs.NotImplemented(fmt.Errorf("layer %s: foreign layers are not supported", l.Digest))
		}
	}
	return &pulled{manifest: m, topDigest: top, config: cfg, configDesc: m.Config, diffIDs: ic.RootFS.DiffIDs}, nil
}

// manifestError words a missing image the way Docker does.
func manifestError(n reference.Named, err error) error {
	fam := reference.FamiliarString(n)
	switch errdefs.KindOf(err) {
	case errdefs.KindNotFound:
		return errdefs.NotFound(fmt.Errorf("manifest for %s not found: %w", fam, err))
	case errdefs.KindUnauthorized:
		return errdefs.NotFound(fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w", reference.FamiliarName(n), err))
	}
	return err
}

// getManifest GETs a manifest by tag or digest and returns its media type, bytes and digest. A
// reference by digest is verified here; a tag's digest is computed from the bytes.
func (r *repo) getManifest(ctx context.Context, ident string) (string, []byte, digest.Digest, error) {
	resp, err := r.do(ctx, http.MethodGet, r.base+"/manifests/"+ident, nil, http.Header{"Accept": {acceptManifests}})
	if err != nil {
		return "", nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, "", registryError(resp, "manifest")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return "", nil, "", transient(errdefs.Unavailable(err))
	}
	if len(body) > maxManifestSize {
		return "", nil, "", errdefs.InvalidParameter(fmt.Errorf("manifest %s is larger than %d bytes", ident, maxManifestSize))
	}
	alg := digest.SHA256
	if want, err := digest.Parse(ident); err == nil {
		alg = want.Algorithm()
		if got := alg.FromBytes(body); got != want {
			return "", nil, "", errdefs.InvalidParameter(fmt.Errorf("manifest verification failed for digest %s: got %s", want, got))
		}
	}
	mt := resp.Header.Get("Content-Type")
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	var probe struct {
		MediaType     string `json:"mediaType"`
		SchemaVersion int    `json:"schemaVersion"`
	}
	json.Unmarshal(body, &probe)
	if probe.MediaType != "" {
		mt = probe.MediaType
	} else if probe.SchemaVersion == 1 {
		mt = mediaDockerSchema1
	}
	return mt, body, alg.FromBytes(body), nil
}

// getBlob reads a small blob (a config) into memory and verifies it.
func (r *repo) getBlob(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, errdefs.InvalidParameter(err)
	}
	resp, err := r.do(ctx, http.MethodGet, r.base+"/blobs/"+desc.Digest.String(), nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, registryError(resp, "blob "+desc.Digest.String())
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigSize+1))
	if err != nil {
		return nil, transient(errdefs.Unavailable(err))
	}
	if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest {
		return nil, errdefs.InvalidParameter(fmt.Errorf("blob %s failed verification: got %s", desc.Digest, got))
	}
	return b, nil
}

// pullAllTags pulls every tag the registry lists for repository n.
func (s *Service) pullAllTags(ctx context.Context, n reference.Named, opts PullOptions, out Progress) error {
	ep := s.endpoints(n, false)
	r, err := s.open(ctx, ep[len(ep)-1], reference.Path(n), opts.Auth, false)
	if err != nil {
		return err
	}
	tags, err := r.listTags(ctx)
	if err != nil {
		return manifestError(n, err)
	}
	if len(tags) == 0 {
		return errdefs.NotFound(fmt.Errorf("repository %s has no tags", reference.FamiliarName(n)))
	}
	for _, tag := range tags {
		t, err := reference.WithTag(n, tag)
		if err != nil {
			continue
		}
		if _, err := s.Pull(ctx, t.String(), PullOptions{Auth: opts.Auth, Platform: opts.Platform}, out); err != nil {
			return err
		}
	}
	return nil
}

// listTags follows the tag list's pagination (Link headers) to the end.
func (r *repo) listTags(ctx context.Context) ([]string, error) {
	var all []string
	next := r.base + "/tags/list?n=1000"
	for next != "" {
		resp, err := r.do(ctx, http.MethodGet, next, nil, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Tags []string `json:"tags"`
		}
		if resp.StatusCode != http.StatusOK {
			err = registryError(resp, "tags")
		} else {
			err = json.NewDecoder(io.LimitReader(resp.Body, maxManifestSize)).Decode(&page)
		}
		link := resp.Header.Get("Link")
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, page.Tags...)
		next = ""
		if i, j := strings.IndexByte(link, '<'), strings.IndexByte(link, '>'); i >= 0 && j > i {
			if u, err := resp.Request.URL.Parse(link[i+1 : j]); err == nil {
				next = u.String()
			}
		}
	}
	return all, nil
}
