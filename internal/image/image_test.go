package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/docker/docker/api/types/filters"
	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestImportMountRun(t *testing.T) {
	for _, copy := range []bool{false, true} {
		name := map[bool]string{false: "overlay", true: "copy"}[copy]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, copy)
			id := importBusybox(t, e, "busybox",
				`CMD ["/bin/sh", "-c", "echo hi"]`, "ENV A=1 B=\"two words\"", "WORKDIR /tmp", "LABEL team=berth", "EXPOSE 80 53/udp", "USER berth")
			for _, ref := range []string{"busybox", "busybox:latest", "docker.io/library/busybox:latest", id.String(), id.Encoded(), id.Encoded()[:12]} {
				img, err := e.svc.Get(ctx, ref)
				if err != nil || img.ID != id {
					t.Fatalf("Get(%q) = %v, %v", ref, img, err)
				}
			}
			img, _ := e.svc.Get(ctx, "busybox")
			if !reflect.DeepEqual(img.RepoTags, []string{"busybox:latest"}) || img.ChainID != img.DiffIDs[0].String() || img.Size <= 0 {
				t.Fatalf("image = %+v", img)
			}
			if _, err := e.svc.Get(ctx, "nope"); !errdefs.IsNotFound(err) || err.Error() != "No such image: nope:latest" {
				t.Fatalf("Get(nope) = %v", err)
			}

			root := mountImage(t, e, "busybox")
			if got := runIn(t, root, "cat", "/etc/passwd"); !strings.Contains(got, "berth:x:1000") {
				t.Fatalf("passwd in image: %q", got)
			}

			ins, err := e.svc.Inspect(ctx, "busybox")
			if err != nil {
				t.Fatal(err)
			}
			c := ins.Config
			if ins.ID != id.String() || ins.Comment != "Imported from -" || ins.Os != "linux" || ins.Architecture != "amd64" ||
				ins.RootFS.Type != "layers" || len(ins.RootFS.Layers) != 1 || ins.Created == "" {
				t.Errorf("inspect = %+v", ins)
			}
			if !reflect.DeepEqual(c.Cmd, []string{"/bin/sh", "-c", "echo hi"}) || !reflect.DeepEqual(c.Env, []string{"A=1", "B=two words"}) ||
				c.WorkingDir != "/tmp" || c.User != "berth" || c.Labels["team"] != "berth" || len(c.ExposedPorts) != 2 {
				t.Errorf("config = %+v", c)
			}
			if _, ok := c.ExposedPorts["53/udp"]; !ok {
				t.Errorf("ports = %v", c.ExposedPorts)
			}
			hist, err := e.svc.History(ctx, "busybox")
			if err != nil || len(hist) != 1 || hist[0].ID != id.String() || hist[0].Comment != "Imported from -" || hist[0].Size != img.Size {
				t.Fatalf("history = %+v, %v", hist, err)
			}
		})
	}
}

func TestImportGzipAndBadChange(t *testing.T) {
	e := newEnv(t, false)
	layer := gz(t, tarOf(t, map[string]string{"hello": "world"}))
	id, err := e.svc.Import(ctx, bytes.NewReader(layer), ImportOptions{Message: "msg"})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := e.svc.Get(ctx, id.String())
	if img.DiffIDs[0] != digest.FromBytes(tarOf(t, map[string]string{"hello": "world"})) {
		t.Fatal("diffID is not the digest of the uncompressed tar")
	}
	if ins, _ := e.svc.Inspect(ctx, id.String()); ins.Comment != "msg" || len(ins.RepoTags) != 0 {
		t.Fatalf("inspect = %+v", ins)
	}
	_, err = e.svc.Import(ctx, bytes.NewReader(layer), ImportOptions{Changes: []string{"RUN echo"}})
	if !errdefs.IsInvalidParameter(err) {
		t.Fatalf("RUN change: %v", err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	e := newEnv(t, false)
	id := importBusybox(t, e, "busybox", "CMD /bin/sh")
	if err := e.svc.Tag(ctx, "busybox", "example.com/team/bb:v1"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := e.svc.Save(ctx, []string{"busybox", "example.com/team/bb:v1"}, &buf); err != nil {
		t.Fatal(err)
	}
	// Both layouts in one archive.
	names := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		names[h.Name] = b
	}
	for _, n := range []string{"oci-layout", "index.json", "manifest.json", "blobs/sha256/" + id.Encoded()} {
		if _, ok := names[n]; !ok {
			t.Fatalf("archive lacks %s", n)
		}
	}
	var idx ocispec.Index
	json.Unmarshal(names["index.json"], &idx)
	if len(idx.Manifests) != 2 || idx.Manifests[0].Annotations[annotationImageName] == "" {
		t.Fatalf("index.json = %s", names["index.json"])
	}

	fresh := newEnv(t, false)
	var lines []string
	if err := fresh.svc.Load(ctx, bytes.NewReader(buf.Bytes()), func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lines, "|"); got != "Loaded image: busybox:latest|Loaded image: example.com/team/bb:v1" {
		t.Fatalf("progress = %s", got)
	}
	img, err := fresh.svc.Get(ctx, "example.com/team/bb:v1")
	if err != nil || img.ID != id {
		t.Fatalf("loaded %v, %v; want %s", img, err, id)
	}
	root := mountImage(t, fresh, "busybox")
	if _, err := os.Stat(filepath.Join(root, "bin/busybox")); err != nil {
		t.Fatal(err)
	}
	// Loading the same archive again unpacks nothing new.
	before := countDirs(t, filepath.Join(fresh.root, "snapshots"))
	if err := fresh.svc.Load(ctx, bytes.NewReader(buf.Bytes()), nil); err != nil {
		t.Fatal(err)
	}
	if after := countDirs(t, filepath.Join(fresh.root, "snapshots")); after != before {
		t.Fatalf("snapshot dirs %d -> %d on reload", before, after)
	}
	// The OCI half alone loads too (manifest.json removed), through the same path.
	delete(names, "manifest.json")
	ociOnly := newEnv(t, true)
	if err := ociOnly.svc.Load(ctx, archiveOf(t, names), nil); err != nil {
		t.Fatal(err)
	}
	if img, err := ociOnly.svc.Get(ctx, "busybox:latest"); err != nil || img.ID != id {
		t.Fatalf("OCI-only load: %v, %v", img, err)
	}
}

// TestLoadOCILayoutGzipNestedIndex builds an OCI layout by hand (no skopeo): index.json -> nested
// index -> {linux/amd64 manifest with a gzip layer, arm64 manifest whose blobs are absent}.
func TestLoadOCILayoutGzipNestedIndex(t *testing.T) {
	e := newEnv(t, false)
	layer := readAll(t, busyboxTar(t))
	gzLayer := gz(t, layer)
	cfg := configFor(t, [][]byte{layer}, nil)
	blobs := map[string][]byte{}
	put := func(b []byte) ocispec.Descriptor {
		d := digest.FromBytes(b)
		blobs["blobs/sha256/"+d.Encoded()] = b
		return ocispec.Descriptor{Digest: d, Size: int64(len(b))}
	}
	cfgDesc := put(cfg)
	cfgDesc.MediaType = ocispec.MediaTypeImageConfig
	layerDesc := put(gzLayer)
	layerDesc.MediaType = ocispec.MediaTypeImageLayerGzip
	man, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfgDesc, Layers: []ocispec.Descriptor{layerDesc}})
	manDesc := put(man)
	manDesc.MediaType = ocispec.MediaTypeImageManifest
	manDesc.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	armDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 1,
		Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}}
	nested, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{armDesc, manDesc}})
	nestedDesc := put(nested)
	nestedDesc.MediaType = ocispec.MediaTypeImageIndex
	nestedDesc.Annotations = map[string]string{annotationImageName: "docker.io/library/ocitest:v1", annotationRefName: "v1"}
	top, _ := json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{nestedDesc}})
	blobs["index.json"] = top
	blobs["oci-layout"] = []byte(`{"imageLayoutVersion":"1.0.0"}`)

	var lines []string
	if err := e.svc.Load(ctx, archiveOf(t, blobs), func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || lines[0] != "Loaded image: ocitest:v1" {
		t.Fatalf("progress = %v", lines)
	}
	img, err := e.svc.Get(ctx, "ocitest:v1")
	if err != nil || img.ID != digest.FromBytes(cfg) || img.DiffIDs[0] != digest.FromBytes(layer) {
		t.Fatalf("image = %+v, %v", img, err)
	}
	// The content store keeps the layer uncompressed, under its diffID.
	if size, err := e.svc.cfg.Content.Info(digest.FromBytes(layer)); err != nil || size != int64(len(layer)) {
		t.Fatalf("layer blob: %d %v", size, err)
	}
	root := mountImage(t, e, "ocitest:v1")
	if got := runIn(t, root, "echo", "ok"); got != "ok" {
		t.Fatal(got)
	}
}

func TestSharedBaseLayerStoredOnce(t *testing.T) {
	e := newEnv(t, false)
	base := readAll(t, busyboxTar(t))
	importBusybox(t, e, "base")
	extra := tarOf(t, map[string]string{"app/": "", "app/run": "app"})
	whiteout := tarOf(t, map[string]string{"etc/.wh.group": ""})
	cfg := configFor(t, [][]byte{base, extra, whiteout}, map[string]string{"app": "1"})
	if err := e.svc.Load(ctx, dockerArchive(t, cfg, [][]byte{base, extra, whiteout}, []string{"app:1"}), nil); err != nil {
		t.Fatal(err)
	}
	if n := countDirs(t, filepath.Join(e.root, "snapshots")); n != 3 {
		t.Fatalf("%d snapshot dirs, want 3 (base shared)", n)
	}
	blobs := 0
	e.svc.cfg.Content.Walk(func(digest.Digest, int64) error { blobs++; return nil })
	if blobs != 5 { // 3 layers + 2 configs
		t.Fatalf("%d blobs, want 5", blobs)
	}
	t.Run("mounted", func(t *testing.T) {
		root := mountImage(t, e, "app:1")
		if _, err := os.Stat(filepath.Join(root, "app/run")); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/group")); !os.IsNotExist(err) {
			t.Fatalf("whiteout did not hide etc/group: %v", err)
		}
		if _, err := os.Stat(filepath.Join(root, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
	})
	list, err := e.svc.List(ctx, false, filters.NewArgs())
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
	// Removing the derived image keeps the base layer.
	recs, err := e.svc.Remove(ctx, "app:1", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs[0].Untagged != "app:1" || recs[1].Deleted != digest.FromBytes(cfg).String() { // untag, image, two layers
		t.Fatalf("records = %+v", recs)
	}
	if n := countDirs(t, filepath.Join(e.root, "snapshots")); n != 1 {
		t.Fatalf("%d snapshot dirs after rmi, want 1", n)
	}
	if _, err := e.svc.Get(ctx, "base"); err != nil {
		t.Fatal(err)
	}
}
