// Package build builds images from a Dockerfile and a context, for POST /build (Docker's legacy builder
// API) and `berth build`.
//
// The Dockerfile is parsed with BuildKit's published parser (frontend/dockerfile/parser and
// instructions). Only the stages the target needs are built. Every step makes one image: instructions
// that only change the config (ENV, LABEL, CMD, ...) add a history entry, RUN runs its command in a
// container of the previous image and commits the container's layer, COPY and ADD write a layer from
// the context (read through an os.Root, so no name or symlink reaches outside it) or from another
// stage's or image's files.
//
// The context is a tar (maybe compressed) unpacked under the builder's directory as it streams in, a
// Dockerfile alone, a git repository cloned with the git binary, or a synced context (synced.go):
// the tree `berth build` last sent for that directory, brought up to date with only what changed.
// .dockerignore is applied on this side too, so no client can make COPY see an excluded file.
//
// Cache: a step's key is its parent image, the instruction after expansion and the runtime settings it
// sees, and for COPY/ADD the digest of the content (names, modes, owners, bytes; not mtimes) of what it
// copies. Keys map to image IDs in the "build-cache" bucket of the metadata database, so they survive a
// restart; an entry whose image was removed is a miss. --cache-from images are matched by history and
// layers, as Docker's legacy builder does. Prune empties the cache and removes the step images only it
// kept.
//
// Reproducible: every image and history entry of a stage is stamped with one time, SOURCE_DATE_EPOCH
// when the build sets it (as a build argument) and otherwise the base image's creation time, and layer
// mtimes are clamped to it. Layers are written in lexical order without atimes or user names, so the
// same steps on the same content give the same layer digests and image IDs.
package build
