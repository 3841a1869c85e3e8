package reference

import (
	"errors"

	"github.com/opencontainers/go-digest"
)

// nameTotalLengthMax bounds the path part of a name (the domain does not count), as Docker does.
// ErrNameTooLong spells it out: a constant message keeps fmt out of package init.
const nameTotalLengthMax = 255

// Errors with distribution/reference's wording, which the docker CLI and users know.
var (
	// ErrReferenceInvalidFormat is returned for anything the reference grammar does not accept.
	ErrReferenceInvalidFormat = errors.New("invalid reference format")
	// ErrTagInvalidFormat is returned by WithTag for a tag outside [\w][\w.-]{0,127}.
	ErrTagInvalidFormat = errors.New("invalid tag format")
	// ErrNameContainsUppercase is returned when the reference would be valid once lowercased.
	ErrNameContainsUppercase = errors.New("repository name must be lowercase")
	// ErrNameTooLong is returned when the repository path exceeds 255 characters.
	ErrNameTooLong = errors.New("repository name must not be more than 255 characters")
)

// Named is a repository name, possibly with a tag and/or digest. Every Named this package
// returns is one of four concrete types, so a type assertion to Tagged or Digested tells
// which parts are present.
type Named interface {
	// Name is the fully qualified repository, e.g. "docker.io/library/busybox".
	Name() string
	// String is Name plus ":tag" and/or "@digest" when present.
	String() string
}

// Tagged is a Named that carries a tag.
type Tagged interface {
	Named
	Tag() string
}

// NamedTagged is Tagged under distribution/reference's other name for it.
type NamedTagged = Tagged

// Digested is a Named that carries a digest.
type Digested interface {
	Named
	Digest() digest.Digest
}

// Canonical is Digested under distribution/reference's name for a named digest reference.
type Canonical = Digested

// repository is a bare name: no tag, no digest.
type repository struct {
	domain string
	path   string
}

func (r repository) Name() string {
	if r.domain == "" {
		return r.path
	}
	return r.domain + "/" + r.path
}

func (r repository) String() string { return r.Name() }

// Domain returns the registry part ("docker.io", "localhost:5000"), empty for a familiar name.
func (r repository) Domain() string { return r.domain }

// Path returns the repository path without the domain ("library/busybox").
func (r repository) Path() string { return r.path }

func (r repository) familiar() Named { return familiarRepository(r) }

type taggedReference struct {
	repository
	tag string
}

func (t taggedReference) String() string { return t.Name() + ":" + t.tag }
func (t taggedReference) Tag() string    { return t.tag }
func (t taggedReference) familiar() Named {
	return taggedReference{familiarRepository(t.repository), t.tag}
}

type digestedReference struct {
	repository
	digest digest.Digest
}

func (d digestedReference) String() string        { return d.Name() + "@" + d.digest.String() }
func (d digestedReference) Digest() digest.Digest { return d.digest }
func (d digestedReference) familiar() Named {
	return digestedReference{familiarRepository(d.repository), d.digest}
}

type fullReference struct {
	repository
	tag    string
	digest digest.Digest
}

func (f fullReference) String() string        { return f.Name() + ":" + f.tag + "@" + f.digest.String() }
func (f fullReference) Tag() string           { return f.tag }
func (f fullReference) Digest() digest.Digest { return f.digest }
func (f fullReference) familiar() Named {
	return fullReference{familiarRepository(f.repository), f.tag, f.digest}
}

// makeNamed picks the concrete type matching the parts present, so type assertions stay truthful.
func makeNamed(repo repository, tag string, dgst digest.Digest) Named {
	switch {
	case tag == "" && dgst == "":
		return repo
	case dgst == "":
		return taggedReference{repo, tag}
	case tag == "":
		return digestedReference{repo, dgst}
	default:
		return fullReference{repo, tag, dgst}
	}
}

// namedRepository is a Named that knows its own domain/path split.
type namedRepository interface {
	Named
	Domain() string
	Path() string
}

// parts returns the repository, tag and digest of any Named, ours or not.
func parts(n Named) (repository, string, digest.Digest) {
	var repo repository
	if r, ok := n.(namedRepository); ok {
		repo = repository{r.Domain(), r.Path()}
	} else {
		repo.domain, repo.path, _ = splitName(n.Name())
	}
	var tag string
	var dgst digest.Digest
	if t, ok := n.(interface{ Tag() string }); ok {
		tag = t.Tag()
	}
	if d, ok := n.(interface{ Digest() digest.Digest }); ok {
		dgst = d.Digest()
	}
	return repo, tag, dgst
}

// WithTag returns n with its tag set to tag, keeping any digest.
func WithTag(n Named, tag string) (Tagged, error) {
	if !isTag(tag) {
		return nil, ErrTagInvalidFormat
	}
	repo, _, dgst := parts(n)
	return makeNamed(repo, tag, dgst).(Tagged), nil
}

// TrimNamed returns the bare repository of n, dropping tag and digest.
func TrimNamed(n Named) Named {
	repo, _, _ := parts(n)
	return repo
}

// Domain returns the registry part of n ("docker.io", "localhost:5000").
func Domain(n Named) string {
	repo, _, _ := parts(n)
	return repo.domain
}

// Path returns the repository path of n without its domain ("library/busybox").
func Path(n Named) string {
	repo, _, _ := parts(n)
	return repo.path
}

// WithDigest returns n with its digest set to d, keeping any tag.
func WithDigest(n Named, d digest.Digest) (Canonical, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	repo, tag, _ := parts(n)
	return makeNamed(repo, tag, d).(Canonical), nil
}
