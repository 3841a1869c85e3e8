package build

import (
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/distribution/reference"
)

// normaliseTag checks a -t value and returns its full form ("docker.io/library/x:latest").
func normaliseTag(t string) (string, error) {
	n, err := reference.ParseNormalizedNamed(t)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid reference format: %s", t))
	}
	if _, ok := n.(reference.Digested); ok {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid tag %s: a build cannot be tagged with a digest", t))
	}
	return reference.TagNameOnly(n).String(), nil
}

// familiar is the short form Docker prints ("x:latest").
func familiar(full string) string {
	n, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return full
	}
	return reference.FamiliarString(n)
}
