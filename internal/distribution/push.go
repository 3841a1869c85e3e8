package distribution

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/reference"
	"github.com/docker/docker/api/types/registry"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Push sends ref to its registry. A name without a tag pushes every local tag of that repository.
func (s *Service) Push(ctx context.Context, ref string, auth *registry.AuthConfig, out Progress) error {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %w", err))
	}
	if _, ok := n.(reference.Digested); ok {
		return errdefs.InvalidParameter(errors.New("cannot push a digest reference"))
	}
	var tags []reference.Named
	if reference.IsNameOnly(n) {
		tags = s.cfg.Images.RepoTags(n)
	} else if s.cfg.Images.Resolved(n) != "" {
		tags = []reference.Named{n}
	}
	if len(tags) == 0 {
		return errdefs.NotFound(fmt.Errorf("An image does not exist locally with the tag: %s", reference.FamiliarName(n)))
	}
	p := newProgress(out)
	p.line("The push refers to repository [%s]", n.Name())
	ep := s.endpoints(n, true)[0]
	path := reference.Path(n)
	// Ask for pull rights on the repositories layers might be mounted from, in the same token.
	var extra []string
	seen := map[string]bool{path: true}
	for _, t := range tags {
		img, err := s.cfg.Images.Get(ctx, t.String())
		if err != nil {
			return err
		}
		for _, d := range img.DiffIDs {
			for _, k := range s.knownBlobs(d) {
				if k.Host == ep.host && !seen[k.Repo] {
					seen[k.Repo] = true
					extra = append(extra, "repository:"+k.Repo+":pull")
				}
			}
		}
	}
	r, err := s.open(ctx, ep, path, auth, true, extra...)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if err := s.pushTag(ctx, r, t, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) pushTag(ctx context.Context, r *repo, t reference.Named, p *progress) error {
	img, err := s.cfg.Images.Get(ctx, t.String())
	if err != nil {
		return err
	}
	cfg, err := s.cfg.Images.ConfigBytes(img.ID)
	if err != nil {
		return errdefs.System(err)
	}
	layers := make([]ocispec.Descriptor, len(img.DiffIDs))
	errs := make([]error, len(img.DiffIDs))
	for i := len(img.DiffIDs) - 1; i >= 0; i-- {
		p.status(shortDigest(img.DiffIDs[i]), "Preparing")
	}
	sem := make(chan struct{}, s.cfg.MaxUploads)
	var wg sync.WaitGroup
	for i, d := range img.DiffIDs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				return
			}
			defer func() { <-sem }()
			layers[i], errs[i] = s.pushLayer(ctx, r, d, p)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	cfgDesc := ocispec.Descriptor{MediaType: mediaDockerConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	if ok, err := r.blobExists(ctx, cfgDesc.Digest); err != nil {
		return err
	} else if !ok {
		if _, _, err := r.upload(ctx, strings.NewReader(string(cfg)), nil); err != nil {
			return err
		}
	}
	m := struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        ocispec.Descriptor   `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
	}{2, mediaDockerManifest, cfgDesc, layers}
	body, err := json.MarshalIndent(m, "", "   ")
	if err != nil {
		return err
	}
	tag := "latest"
	if tg, ok := t.(reference.Tagged); ok {
		tag = tg.Tag()
	}
	resp, err := r.do(ctx, http.MethodPut, r.base+"/manifests/"+tag, strings.NewReader(string(body)), http.Header{"Content-Type": {mediaDockerManifest}})
	if err != nil {
		return err
	}
	if err := expect(resp, "manifest", http.StatusCreated, http.StatusOK); err != nil {
		return err
	}
	dg := digest.FromBytes(body)
	if c, err := reference.WithDigest(reference.TrimNamed(t), dg); err == nil {
		s.cfg.Images.Pushed(img.ID, t, c)
	}
	p.line("%s: digest: %s size: %d", tag, dg, len(body))
	p.aux(map[string]any{"Tag": tag, "Digest": dg.String(), "Size": len(body)})
	return nil
}

// pushLayer makes sure the registry has a compressed form of layer diffID in r's repository: it is
// already there, or mounted from a sibling repository, or compressed and uploaded now.
func (s *Service) pushLayer(ctx context.Context, r *repo, diffID digest.Digest, p *progress) (ocispec.Descriptor, error) {
	id := shortDigest(diffID)
	known := s.knownBlobs(diffID)
	for _, k := range known {
		if k.Host != r.ep.host {
			continue
		}
		desc := ocispec.Descriptor{MediaType: k.MediaType, Digest: k.Digest, Size: k.Size}
		if desc.MediaType == "" || desc.MediaType == ocispec.MediaTypeImageLayerGzip {
			desc.MediaType = mediaDockerLayer
		}
		if k.Repo == r.path {
			if ok, err := r.blobExists(ctx, k.Digest); err != nil {
				return desc, err
			} else if ok {
				p.status(id, "Layer already exists")
				return desc, nil
			}
			continue
		}
		if ok, err := r.mount(ctx, k.Digest, k.Repo); err != nil {
			return desc, err
		} else if ok {
			s.remember(diffID, knownBlob{Digest: k.Digest, Size: k.Size, MediaType: k.MediaType, Host: r.ep.host, Repo: r.path})
			p.status(id, "Mounted from "+k.Repo)
			return desc, nil
		}
	}
	rc, err := s.cfg.Images.OpenLayer(diffID)
	if err != nil {
		return ocispec.Descriptor{}, errdefs.System(fmt.Errorf("layer %s: %w", diffID, err))
	}
	defer rc.Close()
	var total int64
	if f, ok := rc.(interface{ Stat() (os.FileInfo, error) }); ok {
		if st, err := f.Stat(); err == nil {
			total = st.Size()
		}
	}
	pr, pw := io.Pipe()
	go func() {
		// Fixed header fields and one compression level make the blob a function of the layer, so
		// pushing the same layer again yields the same digest.
		zw, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		_, err := io.Copy(zw, rc)
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	dg, size, err := r.upload(ctx, pr, func(n int64) { p.bytes(id, "Pushing", n, total) })
	pr.CloseWithError(errors.New("upload ended"))
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	s.remember(diffID, knownBlob{Digest: dg, Size: size, MediaType: mediaDockerLayer, Host: r.ep.host, Repo: r.path})
	p.status(id, "Pushed")
	return ocispec.Descriptor{MediaType: mediaDockerLayer, Digest: dg, Size: size}, nil
}

func (r *repo) blobExists(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := r.do(ctx, http.MethodHead, r.base+"/blobs/"+d.String(), nil, nil)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, registryError(resp, "blob "+d.String())
}

// mount asks the registry to link blob d from repository from into r; false when it would not.
func (r *repo) mount(ctx context.Context, d digest.Digest, from string) (bool, error) {
	u := r.base + "/blobs/uploads/?mount=" + url.QueryEscape(d.String()) + "&from=" + url.QueryEscape(from)
	resp, err := r.do(ctx, http.MethodPost, u, nil, nil)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted:
		// The registry opened an upload session instead; drop it.
		if loc, err := location(resp); err == nil {
			if c, err := r.do(ctx, http.MethodDelete, loc, nil, nil); err == nil {
				c.Body.Close()
			}
		}
		return false, nil
	}
	return false, nil
}

// upload streams body to a new upload session (POST, one PATCH, PUT ?digest=), hashing as it goes.
func (r *repo) upload(ctx context.Context, body io.Reader, report func(n int64)) (digest.Digest, int64, error) {
	resp, err := r.do(ctx, http.MethodPost, r.base+"/blobs/uploads/", nil, nil)
	if err != nil {
		return "", 0, err
	}
	if err := expect(resp, "upload", http.StatusAccepted); err != nil {
		return "", 0, err
	}
	loc, err := location(resp)
	if err != nil {
		return "", 0, err
	}
	dg := digest.SHA256.Digester()
	cr := &countingReader{r: io.TeeReader(body, dg.Hash()), report: report}
	resp, err = r.do(ctx, http.MethodPatch, loc, cr, http.Header{"Content-Type": {"application/octet-stream"}})
	if err != nil {
		return "", 0, err
	}
	if err := expect(resp, "upload", http.StatusAccepted, http.StatusNoContent); err != nil {
		return "", 0, err
	}
	if loc, err = location(resp); err != nil {
		return "", 0, err
	}
	d := dg.Digest()
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	resp, err = r.do(ctx, http.MethodPut, loc+sep+"digest="+url.QueryEscape(d.String()), nil, nil)
	if err != nil {
		return "", 0, err
	}
	if err := expect(resp, "upload", http.StatusCreated); err != nil {
		return "", 0, err
	}
	return d, cr.n, nil
}

// expect closes resp, and turns any status but codes into the registry's error.
func expect(resp *http.Response, what string, codes ...int) error {
	defer resp.Body.Close()
	for _, c := range codes {
		if resp.StatusCode == c {
			return nil
		}
	}
	return registryError(resp, what)
}

// location resolves an upload Location header against the request that returned it.
func location(resp *http.Response) (string, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return "", errdefs.System(errors.New("registry sent no upload location"))
	}
	u, err := resp.Request.URL.Parse(l)
	if err != nil {
		return "", errdefs.System(fmt.Errorf("bad upload location %q: %w", l, err))
	}
	return u.String(), nil
}

type countingReader struct {
	r      io.Reader
	n      int64
	report func(int64)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.report != nil && n > 0 {
		c.report(c.n)
	}
	return n, err
}
