// Package reference parses image references ("busybox", "localhost:5000/a/b:tag",
// "img@sha256:...") with Docker's normalisation rules and error messages.
//
// It exists instead of github.com/distribution/reference because berthd re-executes itself as
// every container's init, and Go runs every linked package's init first: that module compiles a
// dozen regexps at init, several milliseconds per container start. This package has no package
// state at all; the grammar is scanned by hand (grammar.go), so linking it costs nothing.
//
// Results are meant to be indistinguishable from distribution/reference's: the same accepted
// inputs, the same Name/String/familiar forms, the same error texts (users see them). The fuzz
// test in equivalence_test.go checks that against the original.
package reference
