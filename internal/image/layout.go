package image

// Names and media types shared by Load and Save: a docker-save archive (manifest.json) and an OCI image
// layout (oci-layout, index.json, blobs/<alg>/<hex>) can live in the same tar.
const (
	dockerManifestFile = "manifest.json"
	ociIndexFile       = "index.json"
	ociLayoutFile      = "oci-layout"

	annotationImageName = "io.containerd.image.name"          // full reference, as containerd and Docker 25+ write it
	annotationRefName   = "org.opencontainers.image.ref.name" // tag (or full reference, depending on the tool)

	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// dockerManifestEntry is one image in a docker-save manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}
