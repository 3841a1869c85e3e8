// Package distribution moves images between berthd and registries that speak the OCI distribution
// spec (or Docker's registry v2 API): pull, push and login.
//
// Pull. The manifest (an index picks linux/<arch>) and config come first and are checked against
// their digests. Layers the image store already has are skipped; the rest download in parallel into
// <root>/pulls/<digest>, one file per blob, while the image store unpacks them bottom first, reading
// each file as it grows. A download that breaks (network fault, registry gone, berthd killed) keeps its
// file, and the next pull resumes it with a Range request, so complete blobs are never fetched twice.
// Every blob is verified against its digest before its last byte is handed to the unpacker: a corrupt
// or truncated blob fails the unpack, and the image store then tags nothing.
//
// Push. Layers are stored uncompressed; a push gzips them (one pass, streamed to the registry while
// hashing). Which compressed blob stands for which layer, and in which repositories it is known to
// exist, is remembered in the "distribution" bucket, so a later push skips blobs the registry has
// (HEAD), or mounts them from another repository of the same registry, without compressing again.
//
// Auth, the token dance and the https-or-http decision are go-containerregistry's transport.
package distribution
