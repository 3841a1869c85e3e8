// Package content is Berth's content-addressable blob store.
//
// Layout: every blob lives at <root>/blobs/sha256/<hex>, named by the sha256 of its bytes. A write
// streams into a private file under <root>/ingest/ while hashing; Commit verifies the digest, fsyncs the
// file, renames it into place and fsyncs the directory. Readers therefore only ever see complete,
// verified blobs, and a crash mid-write leaves at most an ingest file, which Open removes.
//
// The store knows nothing about what blobs mean; callers (the image service) decide what is referenced
// and delete what is not.
package content
