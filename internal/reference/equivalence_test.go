package reference

import (
	"strings"
	"testing"

	dref "github.com/distribution/reference"
)

// compareWithDistribution fails t when our parse of s differs in any visible way from
// github.com/distribution/reference's: success, error text, every form of the name, tag, digest.
func compareWithDistribution(t *testing.T, s string) {
	t.Helper()
	ours, oerr := ParseNormalizedNamed(s)
	theirs, terr := dref.ParseNormalizedNamed(s)
	if (oerr == nil) != (terr == nil) || oerr != nil && oerr.Error() != terr.Error() {
		t.Fatalf("%q: ours %v, distribution %v", s, describe(ours, oerr), describeTheirs(theirs, terr))
	}
	if oerr != nil {
		return
	}
	if got, want := describe(ours, nil), describeTheirs(theirs, nil); got != want {
		t.Fatalf("%q:\n ours         %s\n distribution %s", s, got, want)
	}
	if got, want := TagNameOnly(ours).String(), dref.TagNameOnly(theirs).String(); got != want {
		t.Fatalf("%q: TagNameOnly %q, distribution %q", s, got, want)
	}
	if got, want := FamiliarString(TagNameOnly(ours)), dref.FamiliarString(dref.TagNameOnly(theirs)); got != want {
		t.Fatalf("%q: familiar TagNameOnly %q, distribution %q", s, got, want)
	}
	if got, want := Domain(ours)+" "+Path(ours), dref.Domain(theirs)+" "+dref.Path(theirs); got != want {
		t.Fatalf("%q: domain/path %q, distribution %q", s, got, want)
	}
}

func describe(n Named, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var tag, dgst string
	if t, ok := n.(Tagged); ok {
		tag = t.Tag()
	}
	if d, ok := n.(Digested); ok {
		dgst = d.Digest().String()
	}
	return strings.Join([]string{n.Name(), n.String(), FamiliarName(n), FamiliarString(n), "tag=" + tag, "digest=" + dgst,
		boolString(IsNameOnly(n))}, " | ")
}

func describeTheirs(n dref.Named, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var tag, dgst string
	if t, ok := n.(dref.Tagged); ok {
		tag = t.Tag()
	}
	if d, ok := n.(dref.Digested); ok {
		dgst = d.Digest().String()
	}
	return strings.Join([]string{n.Name(), n.String(), dref.FamiliarName(n), dref.FamiliarString(n), "tag=" + tag, "digest=" + dgst,
		boolString(dref.IsNameOnly(n))}, " | ")
}

func boolString(b bool) string {
	if b {
		return "name-only"
	}
	return "qualified"
}

// compareWithTag checks that a tag is accepted or refused exactly as distribution's WithTag does.
func compareWithTag(t *testing.T, tag string) {
	t.Helper()
	ours, oerr := WithTag(repository{"docker.io", "library/busybox"}, tag)
	base, _ := dref.ParseNormalizedNamed("busybox")
	theirs, terr := dref.WithTag(base, tag)
	if (oerr == nil) != (terr == nil) {
		t.Fatalf("WithTag(%q): ours %v, distribution %v", tag, oerr, terr)
	}
	if oerr == nil && ours.String() != theirs.String() {
		t.Fatalf("WithTag(%q): ours %q, distribution %q", tag, ours, theirs)
	}
}

// pieces builds references from parts that sit on the grammar's edges; every combination is
// compared, which reaches far more corners than the hand-written table.
var (
	pieceDomains = []string{"", "localhost/", "localhost:5000/", "index.docker.io/", "docker.io/", "Docker.io/",
		"example.com/", "EXAMPLE.com:443/", "a-b.c/", "-a.c/", "a-.c/", "a..c/", "a.c./", ".a.c/", "a_b.c/", "a:/",
		"a:1x/", "[::1]/", "[::1]:80/", "[]/", "[::1/", "[g::]/", "[::1]x/", "UPPER/", "a:80:90/", "host:/"}
	piecePaths = []string{"a", "busybox", "library/a", "a/b/c", "a.b", "a_b", "a__b", "a___b", "a--b", "a-", "-a",
		"a..b", "a._b", "A", "aB", "a//b", "a/", "", "library", "library/a/b", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		strings.Repeat("x", 248), strings.Repeat("x", 256), "é"}
	pieceTags = []string{"", ":", ":latest", ":A_b.c-d", ":-x", ":.x", ":_x", ":" + strings.Repeat("t", 128),
		":" + strings.Repeat("t", 129), ":a:b", ":a/b"}
	pieceDigests = []string{"", "@", "@sha256:" + hex64, "@sha256:" + strings.ToUpper(hex64), "@sha256:" + hex64[:32],
		"@sha512:" + hex64 + hex64, "@sha384:" + hex64[:48] + hex64[:48], "@md5:" + hex64[:32], "@a+b.c_d-e:" + hex64,
		"@a++b:" + hex64, "@1a:" + hex64, "@a1.b2:" + hex64, "@sha256:" + hex64[:31], "@sha256:" + hex64 + "g",
		"@sha256:" + hex64 + "@x", "@:" + hex64, "@a-:" + hex64}
)

func TestEquivalenceTables(t *testing.T) {
	for _, tc := range validCases {
		compareWithDistribution(t, tc.in)
	}
	for in := range invalidCases {
		compareWithDistribution(t, in)
	}
}

func TestEquivalenceCombinations(t *testing.T) {
	n := 0
	for _, d := range pieceDomains {
		for _, p := range piecePaths {
			for _, tg := range pieceTags {
				for _, dg := range pieceDigests {
					compareWithDistribution(t, d+p+tg+dg)
					n++
				}
			}
		}
	}
	for _, tg := range pieceTags {
		compareWithTag(t, strings.TrimPrefix(tg, ":"))
	}
	t.Logf("%d combinations agree", n)
}

func FuzzParseNormalizedNamed(f *testing.F) {
	for _, s := range []string{"busybox", "localhost:5000/x:1", "[::1]:5000/a@sha256:" + hex64, hex64, "Busybox",
		"a_b.c/d", "registry.example.com/a/b:tag@sha256:" + hex64} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		compareWithDistribution(t, s)
		compareWithTag(t, s)
	})
}
