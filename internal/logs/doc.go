// Package logs writes and reads container logs in Docker's json-file format, one JSON object per line:
//
//	{"log":"hello\n","stream":"stdout","time":"2026-11-23T09:00:00.123456789Z"}
//
// The monitor is the only writer of a container's log file; the daemon only reads it. A line is written
// with a single append, so a reader sees either a whole entry or, while the write is in flight, a prefix
// without its newline, which Read treats as "not yet there". Lines longer than 16 KiB are split into
// entries without a trailing newline, as Docker does, so one huge line never has to be held in memory.
package logs
