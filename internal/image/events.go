package image

import (
	"context"
	"strings"

	"github.com/docker/docker/api/types/image"
	digest "github.com/opencontainers/go-digest"
)

// event reports an image event through Config.Events; attrs carry Docker's "name".
func (s *Service) event(action, id, name string) {
	if s.cfg.Events == nil {
		return
	}
	attrs := map[string]string{}
	if name != "" {
		attrs["name"] = name
	}
	s.cfg.Events(action, id, attrs)
}

// refEvent reports an event about the image ref names, with the image's ID as the actor, as Docker does
// for tag and save.
func (s *Service) refEvent(ctx context.Context, action, ref string) {
	if s.cfg.Events == nil {
		return
	}
	id := ref
	if img, err := s.Get(ctx, ref); err == nil {
		id = img.ID.String()
	}
	s.event(action, id, ref)
}

// loadEvents wraps a Load progress callback so that every image it reports loaded is also an event.
func (s *Service) loadEvents(progress func(string)) func(string) {
	return func(line string) {
		progress(line)
		if ref, ok := strings.CutPrefix(line, "Loaded image: "); ok {
			s.refEvent(context.Background(), "load", strings.TrimSpace(ref))
		} else if id, ok := strings.CutPrefix(line, "Loaded image ID: "); ok {
			s.event("load", strings.TrimSpace(id), strings.TrimSpace(id))
		}
	}
}

// removeEvents reports what a Remove did: one untag per removed tag and one delete for the image itself.
func (s *Service) removeEvents(id digest.Digest, records []image.DeleteResponse) {
	for _, r := range records {
		switch {
		case r.Untagged != "":
			s.event("untag", id.String(), r.Untagged)
		case r.Deleted == id.String():
			s.event("delete", id.String(), id.String())
		}
	}
}
