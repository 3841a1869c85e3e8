package image

import (
	"testing"

	"github.com/berth-dev/berth/internal/reference"
	"github.com/berth-dev/berth/internal/snapshot"
)

type snapshotInfo = snapshot.Info

// Untag removes one tag directly (test helper).
func (s *Service) Untag(t *testing.T, ref string) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.untag(reference.TagNameOnly(n)); err != nil {
		t.Fatal(err)
	}
}
