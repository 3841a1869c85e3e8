package cli

import "testing"

func TestSplitCpArg(t *testing.T) {
	cases := []struct{ in, ctr, path string }{
		{"c1:/etc/passwd", "c1", "/etc/passwd"},
		{"/abs/with:colon", "", "/abs/with:colon"},
		{"./rel:colon", "", "./rel:colon"},
		{"local", "", "local"},
		{"-", "", "-"},
		{"c1:", "c1", ""},
	}
	for _, tc := range cases {
		if c, p := splitCpArg(tc.in); c != tc.ctr || p != tc.path {
			t.Errorf("splitCpArg(%q) = %q, %q", tc.in, c, p)
		}
	}
}

func TestRebaseName(t *testing.T) {
	cases := []struct{ name, old, new, want string }{
		{"etc/passwd", "etc", "cfg", "cfg/passwd"},
		{"etc", "etc", "cfg", "cfg"},
		{"etcetera/x", "etc", "cfg", "etcetera/x"},
		{"./x", ".", "dst", "dst/x"},
		{"passwd", "passwd", "passwd", "passwd"},
	}
	for _, tc := range cases {
		if got := rebaseName(tc.name, tc.old, tc.new); got != tc.want {
			t.Errorf("rebaseName(%q, %q, %q) = %q, want %q", tc.name, tc.old, tc.new, got, tc.want)
		}
	}
	for in, want := range map[string]string{"/etc/": "etc", "dir/.": ".", ".": ".", "a/b": "b"} {
		if got := cpBase(in); got != want {
			t.Errorf("cpBase(%q) = %q, want %q", in, got, want)
		}
	}
}
