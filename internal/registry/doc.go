// Package registry is Berth's container registry server: the OCI distribution-spec v1.1 API (blob
// uploads, cross-repository mounts, manifests and indexes, tags, catalog, referrers, deletes) over a
// plain directory, with optional htpasswd/token auth and a read-only mode. New returns an http.Handler;
// GC collects what no manifest references.
//
// # Storage
//
// Everything lives under the root directory given in Config:
//
//	blobs/<alg>/<hex>                            content, by digest, shared by every repository
//	repos/<name>/_blobs/<alg>/<hex>              link: the repository may see that blob
//	repos/<name>/_manifests/<alg>/<hex>          link: a manifest revision; holds its media type
//	repos/<name>/_tags/<tag>                     the digest a tag points to
//	repos/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  link: a manifest whose subject is <alg>:<hex>
//	repos/<name>/_uploads/<id>                   an upload in progress (data only)
//	tmp/                                         scratch for atomic writes
//
// Repository name components never start with "_" (the spec's name grammar), so the link directories
// cannot collide with a nested repository.
//
// # Crash guarantees
//
// A blob becomes visible only when its link exists, and its link is written only after the content was
// verified against its digest, fsynced and renamed into blobs/ (rename is atomic; the directory is
// synced after it). Tags and manifest links are written to tmp/, fsynced and renamed over. So kill -9
// at any point leaves either the old state or the new one, plus at most an orphaned upload or temp file,
// which no reader ever sees and GC removes.
//
// GC (mark and sweep) is meant to run while no server writes to the same root, as with docker's
// registry garbage-collect.
package registry
