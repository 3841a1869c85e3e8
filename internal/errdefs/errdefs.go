// Package errdefs gives errors a kind (not found, conflict, invalid parameter, ...) so that services can say
// what went wrong without knowing about HTTP, and the API layer can map a kind to a status code in one place.
//
// A service wraps its error once, where the kind is known:
//
//	return errdefs.NotFound(fmt.Errorf("No such container: %s", id))
//
// Callers test with errdefs.IsNotFound(err), which looks through %w wrapping.
package errdefs

import (
	"context"
	"errors"
)

// Kind classifies an error.
type Kind int

// The kinds, in the spirit of moby's errdefs.
const (
	KindUnknown Kind = iota
	KindNotFound
	KindConflict
	KindInvalidParameter
	KindUnavailable
	KindForbidden
	KindNotModified
	KindNotImplemented
	KindSystem
	KindUnauthorized
)

type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

func wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: k, err: err}
}

// NotFound marks err as "the thing asked for does not exist" (HTTP 404).
func NotFound(err error) error { return wrap(KindNotFound, err) }

// Conflict marks err as "the request conflicts with the current state" (HTTP 409).
func Conflict(err error) error { return wrap(KindConflict, err) }

// InvalidParameter marks err as "the request is malformed or names something invalid" (HTTP 400).
func InvalidParameter(err error) error { return wrap(KindInvalidParameter, err) }

// Unavailable marks err as "a dependency is not reachable now; try again" (HTTP 503).
func Unavailable(err error) error { return wrap(KindUnavailable, err) }

// Forbidden marks err as "not allowed" (HTTP 403).
func Forbidden(err error) error { return wrap(KindForbidden, err) }

// NotModified marks err as "nothing to do" (HTTP 304), e.g. starting a started container.
func NotModified(err error) error { return wrap(KindNotModified, err) }

// NotImplemented marks err as "Berth does not do this (yet)" (HTTP 501).
func NotImplemented(err error) error { return wrap(KindNotImplemented, err) }

// System marks err as an internal failure (HTTP 500).
func System(err error) error { return wrap(KindSystem, err) }

// Unauthorized is for credentials a registry refused.
func Unauthorized(err error) error { return wrap(KindUnauthorized, err) }

// KindOf returns the outermost kind found in err's chain, or KindUnknown.
func KindOf(err error) Kind {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return KindUnknown
}

// IsNotFound reports whether err is of kind NotFound.
func IsNotFound(err error) bool { return KindOf(err) == KindNotFound }

// IsConflict reports whether err is of kind Conflict.
func IsConflict(err error) bool { return KindOf(err) == KindConflict }

// IsInvalidParameter reports whether err is of kind InvalidParameter.
func IsInvalidParameter(err error) bool { return KindOf(err) == KindInvalidParameter }

// IsNotModified reports whether err is of kind NotModified.
func IsNotModified(err error) bool { return KindOf(err) == KindNotModified }

// HTTPStatus maps an error to the status code Docker's API would use for it. The codes are plain
// numbers: the container init links this package, and net/http would double its size and start time.
func HTTPStatus(err error) int {
	switch KindOf(err) {
	case KindNotFound:
		return 404
	case KindConflict:
		return 409
	case KindInvalidParameter:
		return 400
	case KindUnavailable:
		return 503
	case KindForbidden:
		return 403
	case KindNotModified:
		return 304
	case KindNotImplemented:
		return 501
	case KindUnauthorized:
		return 401
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return 499 // client went away; nobody reads this, but it must not look like a daemon fault
	}
	return 500
}

// IsNotImplemented reports errors of KindNotImplemented.
func IsNotImplemented(err error) bool { return KindOf(err) == KindNotImplemented }
