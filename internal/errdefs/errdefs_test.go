package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestHTTPStatus(t *testing.T) {
	base := errors.New("x")
	cases := []struct {
		err  error
		want int
	}{
		{NotFound(base), 404},
		{fmt.Errorf("ctx: %w", Conflict(base)), 409},
		{InvalidParameter(base), 400},
		{NotModified(base), 304},
		{base, 500},
	}
	for _, tc := range cases {
		if got := HTTPStatus(tc.err); got != tc.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	if !IsNotFound(fmt.Errorf("wrapped: %w", NotFound(base))) {
		t.Error("IsNotFound does not see through wrapping")
	}
	if NotFound(nil) != nil {
		t.Error("wrapping nil must give nil")
	}
}
