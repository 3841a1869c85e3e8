// Package image is Berth's image service: import, load, save, tag, remove, list, history, inspect and
// prune, with Docker's semantics.
//
// Model. An image is an OCI image config (Docker's flavour, dockerspec.DockerOCIImage); its ID is the
// sha256 of the config's exact bytes, which the content store keeps as a blob. Each layer is kept in the
// content store as an uncompressed tar whose digest is the layer's diffID, and is unpacked exactly once
// into a committed snapshot named by its chain ID. Images that share a base layer share that blob and
// that snapshot.
//
// Every source (import, load, and later commit, build and pull) ends in writeImage, which unpacks the
// missing layers (streaming: one pass over the tar feeds the hash, the content writer and the
// extraction), stores the config, and then records the image and its tags in ONE bbolt transaction.
// Until that transaction commits nothing names the new layers, so a kill -9 at any point leaves no
// tagged image with a missing layer, at worst unreferenced layers that New cleans up.
//
// Removal is the mirror: the image record and tags go in one transaction first, then the layers no other
// image uses are removed top-down (a layer still under a container's snapshot stays).
//
// Buckets: "images" (ID -> record) and "tags" (normalised reference -> ID).
package image
