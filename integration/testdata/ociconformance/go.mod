// A module of its own so the OCI distribution-spec conformance suite (and its dependencies) stays out
// of Berth's go.mod; the registry conformance test builds the suite from here.
module github.com/berth-dev/berth/integration/testdata/ociconformance

go 1.24.0

require github.com/opencontainers/distribution-spec/conformance v0.0.0-20260831232431-97274622c111

require (
	github.com/goccy/go-yaml v1.18.0 // indirect
	github.com/opencontainers/distribution-spec/specs-go v0.0.0-20240926185104-8376368dd8aa // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
