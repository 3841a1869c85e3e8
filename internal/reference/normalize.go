package reference

import (
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
)

const (
	defaultDomain       = "docker.io"
	legacyDefaultDomain = "index.docker.io"
	officialRepoPrefix  = "library/"
	defaultTag          = "latest"
)

// ParseNormalizedNamed parses a reference as the docker CLI accepts it and returns it fully
// qualified: "busybox" becomes docker.io/library/busybox, "user/img" docker.io/user/img, while
// "localhost:5000/x" or "registry.example.com/a/b:tag" keep their domain. A bare 64-hex string
// is refused: it is an image ID, and reading it as a name would shadow the image.
func ParseNormalizedNamed(s string) (Named, error) {
	if isIdentifier(s) {
		return nil, fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, remainder := splitDockerDomain(s)
	remote, _, _ := strings.Cut(remainder, ":")
	// strings.ToLower rather than an ASCII test, so that non-ASCII input fails with the same
	// message as in Docker.
	if strings.ToLower(remote) != remote {
		return nil, fmt.Errorf("invalid reference format: repository name (%s) must be lowercase", remote)
	}
	return parse(domain + "/" + remainder)
}

// splitDockerDomain decides whether the first component of a name is a registry (it has a "."
// or ":", is "localhost", or has uppercase, which only a domain may have) or already part of a
// Docker Hub path.
func splitDockerDomain(name string) (domain, remainder string) {
	first, rest, ok := strings.Cut(name, "/")
	switch {
	case !ok:
		return defaultDomain, officialRepoPrefix + name
	case first == "localhost", strings.ContainsAny(first, ".:"), strings.ToLower(first) != first:
		domain, remainder = first, rest
		if first == legacyDefaultDomain {
			domain = defaultDomain
		}
	default:
		domain, remainder = defaultDomain, name
	}
	if domain == defaultDomain && !strings.ContainsRune(remainder, '/') {
		remainder = officialRepoPrefix + remainder
	}
	return domain, remainder
}

// parse reads a fully qualified reference, with the error precedence of distribution's Parse.
func parse(s string) (Named, error) {
	repo, tag, dgst, ok := scan(s)
	if !ok {
		if _, _, _, ok := scan(strings.ToLower(s)); ok {
			return nil, ErrNameContainsUppercase
		}
		return nil, ErrReferenceInvalidFormat
	}
	if len(repo.path) > nameTotalLengthMax {
		return nil, ErrNameTooLong
	}
	var d digest.Digest
	if dgst != "" {
		var err error
		if d, err = digest.Parse(dgst); err != nil {
			return nil, err
		}
	}
	return makeNamed(repo, tag, d), nil
}

// familiarRepository shortens a Docker Hub name the way users type it: no domain, and no
// "library/" for an official image.
func familiarRepository(r repository) repository {
	if r.domain != defaultDomain {
		return r
	}
	r.domain = ""
	if rest, ok := strings.CutPrefix(r.path, officialRepoPrefix); ok && !strings.ContainsRune(rest, '/') {
		r.path = rest
	}
	return r
}

// familiar is implemented by every Named this package builds.
type familiar interface {
	familiar() Named
}

// FamiliarName returns the name as users type it: "busybox", "user/img", "localhost:5000/x".
func FamiliarName(n Named) string {
	if f, ok := n.(familiar); ok {
		return f.familiar().Name()
	}
	return n.Name()
}

// FamiliarString is FamiliarName with the tag and digest: "busybox:latest".
func FamiliarString(n Named) string {
	if f, ok := n.(familiar); ok {
		return f.familiar().String()
	}
	return n.String()
}

// IsNameOnly reports whether n has neither a tag nor a digest.
func IsNameOnly(n Named) bool {
	_, tagged := n.(Tagged)
	_, digested := n.(Digested)
	return !tagged && !digested
}

// TagNameOnly adds the default tag "latest" to a bare name and returns anything else unchanged.
func TagNameOnly(n Named) Named {
	if !IsNameOnly(n) {
		return n
	}
	t, err := WithTag(n, defaultTag)
	if err != nil {
		panic(err) // "latest" is a valid tag
	}
	return t
}
