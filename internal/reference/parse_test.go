package reference

import (
	"go/build"
	"strings"
	"testing"
)

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// validCases and invalidCases are also checked against distribution/reference in
// equivalence_test.go, so the expectations here are Docker's, not just ours.
var validCases = []struct {
	in, name, str, familiarName, familiarString, tag, digest string
}{
	{"busybox", "docker.io/library/busybox", "docker.io/library/busybox", "busybox", "busybox", "", ""},
	{"busybox:1.36", "docker.io/library/busybox", "docker.io/library/busybox:1.36", "busybox", "busybox:1.36", "1.36", ""},
	{"user/img", "docker.io/user/img", "docker.io/user/img", "user/img", "user/img", "", ""},
	{"library/busybox", "docker.io/library/busybox", "docker.io/library/busybox", "busybox", "busybox", "", ""},
	{"docker.io/busybox", "docker.io/library/busybox", "docker.io/library/busybox", "busybox", "busybox", "", ""},
	{"index.docker.io/user/img:v1", "docker.io/user/img", "docker.io/user/img:v1", "user/img", "user/img:v1", "v1", ""},
	{"docker.io/library/a/b", "docker.io/library/a/b", "docker.io/library/a/b", "library/a/b", "library/a/b", "", ""},
	{"localhost/x", "localhost/x", "localhost/x", "localhost/x", "localhost/x", "", ""},
	{"localhost:5000/x", "localhost:5000/x", "localhost:5000/x", "localhost:5000/x", "localhost:5000/x", "", ""},
	{"localhost:5000", "docker.io/library/localhost", "docker.io/library/localhost:5000", "localhost", "localhost:5000", "5000", ""},
	{"registry.example.com/a/b:tag", "registry.example.com/a/b", "registry.example.com/a/b:tag", "registry.example.com/a/b", "registry.example.com/a/b:tag", "tag", ""},
	{"Registry.Example.com:443/a", "Registry.Example.com:443/a", "Registry.Example.com:443/a", "Registry.Example.com:443/a", "Registry.Example.com:443/a", "", ""},
	{"[::1]:5000/img:v", "[::1]:5000/img", "[::1]:5000/img:v", "[::1]:5000/img", "[::1]:5000/img:v", "v", ""},
	{"[fe80::1]/img", "[fe80::1]/img", "[fe80::1]/img", "[fe80::1]/img", "[fe80::1]/img", "", ""},
	// Has a "." so it is taken as a domain, is not a valid one, but is a valid path: Docker
	// then keeps it as a domain-less name.
	{"a-b.c_d__e---f.g/x", "a-b.c_d__e---f.g/x", "a-b.c_d__e---f.g/x", "a-b.c_d__e---f.g/x", "a-b.c_d__e---f.g/x", "", ""},
	{"Host/a:B", "Host/a", "Host/a:B", "Host/a", "Host/a:B", "B", ""},
	{"img:TAG_x.y-z", "docker.io/library/img", "docker.io/library/img:TAG_x.y-z", "img", "img:TAG_x.y-z", "TAG_x.y-z", ""},
	{"img@sha256:" + hex64, "docker.io/library/img", "docker.io/library/img@sha256:" + hex64, "img", "img@sha256:" + hex64, "", "sha256:" + hex64},
	{"img:tag@sha256:" + hex64, "docker.io/library/img", "docker.io/library/img:tag@sha256:" + hex64, "img", "img:tag@sha256:" + hex64, "tag", "sha256:" + hex64},
	{"img:" + strings.Repeat("t", 128), "docker.io/library/img", "docker.io/library/img:" + strings.Repeat("t", 128), "img", "img:" + strings.Repeat("t", 128), strings.Repeat("t", 128), ""},
	{hex64[:63], "docker.io/library/" + hex64[:63], "docker.io/library/" + hex64[:63], hex64[:63], hex64[:63], "", ""},
	{"x/" + hex64, "docker.io/x/" + hex64, "docker.io/x/" + hex64, "x/" + hex64, "x/" + hex64, "", ""},
}

func TestParseNormalizedNamedValid(t *testing.T) {
	for _, tc := range validCases {
		n, err := ParseNormalizedNamed(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		var tag, dgst string
		if tg, ok := n.(Tagged); ok {
			tag = tg.Tag()
		}
		if d, ok := n.(Digested); ok {
			dgst = d.Digest().String()
		}
		got := [...]string{n.Name(), n.String(), FamiliarName(n), FamiliarString(n), tag, dgst}
		want := [...]string{tc.name, tc.str, tc.familiarName, tc.familiarString, tc.tag, tc.digest}
		if got != want {
			t.Errorf("%q:\n got %q\nwant %q", tc.in, got, want)
		}
	}
}

var invalidCases = map[string]string{
	"":                                      "invalid reference format",
	"Busybox":                               "invalid reference format: repository name (library/Busybox) must be lowercase",
	"user/Img:v1":                           "invalid reference format: repository name (user/Img) must be lowercase",
	hex64:                                   "invalid repository name (" + hex64 + "), cannot specify 64-byte hexadecimal strings",
	"img:":                                  "invalid reference format",
	"img:-tag":                              "invalid reference format",
	"img:.tag":                              "invalid reference format",
	"img:" + strings.Repeat("t", 129):       "invalid reference format",
	"img:a:b":                               "invalid reference format",
	"img@sha256:abc":                        "invalid reference format",
	"img@@sha256:" + hex64:                  "invalid reference format",
	"img@sha256:" + hex64[:63]:              "invalid checksum digest length",
	"img@md5:" + hex64[:32]:                 "unsupported digest algorithm",
	"a..b":                                  "invalid reference format",
	"a._b":                                  "invalid reference format",
	"a___b":                                 "invalid reference format",
	"-a":                                    "invalid reference format",
	"a-":                                    "invalid reference format",
	"a//b":                                  "invalid reference format",
	"a/":                                    "invalid reference format",
	"/a":                                    "invalid reference format",
	"-host.com/a":                           "invalid reference format",
	"host.com:/a":                           "invalid reference format",
	"host.com:50a/a":                        "invalid reference format",
	"[]/a":                                  "invalid reference format",
	"[::1/a":                                "invalid reference format",
	"[::g]/a":                               "invalid reference format",
	"a b":                                   "invalid reference format",
	"HOST/A":                                "invalid reference format: repository name (A) must be lowercase",
	"host.com/" + strings.Repeat("a", 256):  "repository name must not be more than 255 characters",
	"docker.io/" + strings.Repeat("a", 248): "repository name must not be more than 255 characters", // library/ counts
}

func TestParseNormalizedNamedInvalid(t *testing.T) {
	for in, want := range invalidCases {
		_, err := ParseNormalizedNamed(in)
		if err == nil || err.Error() != want {
			t.Errorf("%q: got %v, want %q", in, err, want)
		}
	}
}

func TestUppercaseError(t *testing.T) {
	// Still invalid once lowercased: the plain format error, not the uppercase one.
	_, err := parse("HOST..com/a")
	if err != ErrReferenceInvalidFormat {
		t.Errorf("got %v", err)
	}
	// Kelvin sign K lowercases to ASCII k: valid once lowercased, so the uppercase error.
	if _, err := parse("\u212aexample.com/a"); err != ErrNameContainsUppercase {
		t.Errorf("got %v", err)
	}
}

func TestTagNameOnly(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                   "docker.io/library/busybox:latest",
		"busybox:1":                 "docker.io/library/busybox:1",
		"busybox@sha256:" + hex64:   "docker.io/library/busybox@sha256:" + hex64,
		"busybox:1@sha256:" + hex64: "docker.io/library/busybox:1@sha256:" + hex64,
		"localhost:5000/x":          "localhost:5000/x:latest",
	} {
		n, err := ParseNormalizedNamed(in)
		if err != nil {
			t.Fatal(err)
		}
		got := TagNameOnly(n)
		if got.String() != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
		if _, ok := got.(Tagged); strings.Contains(want, ":1") || strings.HasSuffix(want, ":latest") {
			if !ok {
				t.Errorf("%q: %T is not Tagged", in, got)
			}
		}
		if IsNameOnly(got) {
			t.Errorf("%q: IsNameOnly after TagNameOnly", in)
		}
	}
}

func TestWithTagKeepsDigest(t *testing.T) {
	n, err := ParseNormalizedNamed("img@sha256:" + hex64)
	if err != nil {
		t.Fatal(err)
	}
	tg, err := WithTag(n, "v2")
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := tg.(Digested); !ok || d.Digest().Encoded() != hex64 || tg.String() != "docker.io/library/img:v2@sha256:"+hex64 {
		t.Errorf("got %T %q", tg, tg)
	}
	if _, err := WithTag(n, "-bad"); err != ErrTagInvalidFormat {
		t.Errorf("bad tag: %v", err)
	}
	if TrimNamed(tg).String() != "docker.io/library/img" || Domain(tg) != "docker.io" || Path(tg) != "library/img" {
		t.Errorf("trim/domain/path: %q %q %q", TrimNamed(tg), Domain(tg), Path(tg))
	}
}

// TestNoRegexp guards the reason this package exists: linking it must cost nothing at init.
func TestNoRegexp(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if imp == "regexp" || strings.Contains(imp, "distribution") {
			t.Errorf("package imports %s", imp)
		}
	}
}

func BenchmarkParseNormalizedNamed(b *testing.B) {
	for b.Loop() {
		if _, err := ParseNormalizedNamed("registry.example.com:5000/a/b:tag@sha256:" + hex64); err != nil {
			b.Fatal(err)
		}
	}
}
