package container

import (
	"os"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"
)

func TestParseBind(t *testing.T) {
	cases := []struct {
		raw  string
		want mountPoint
		err  string
	}{
		{raw: "/anon", want: mountPoint{Type: mount.TypeVolume, Destination: "/anon", RW: true, Anonymous: true, CopyData: true}},
		{raw: "/anon:ro", want: mountPoint{Type: mount.TypeVolume, Destination: "/anon", Mode: "ro", Anonymous: true, CopyData: true}},
		{raw: "data:/d", want: mountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/d", RW: true, CopyData: true}},
		{raw: "data:/d:nocopy", want: mountPoint{Type: mount.TypeVolume, Name: "data", Destination: "/d", RW: true, Mode: "nocopy"}},
		{raw: "/h/:/c/:ro,rslave", want: mountPoint{Type: mount.TypeBind, Source: "/h", Destination: "/c", Mode: "ro,rslave", Propagation: "rslave", CreateSource: true}},
		{raw: "/h:/c:z", want: mountPoint{Type: mount.TypeBind, Source: "/h", Destination: "/c", Mode: "z", RW: true, Propagation: "rprivate", CreateSource: true}},
		{raw: "/h:c", err: `invalid volume specification: '/h:c': invalid mount config for type "bind": invalid mount path: 'c' mount path must be absolute`},
		{raw: "/h:/", err: "destination can't be '/'"},
		{raw: "/h:/c:bogus", err: "invalid mode: bogus"},
		{raw: "/h:/c:ro,rw", err: "invalid mode: ro,rw"},
		{raw: "/h:/c:nocopy", err: "invalid mode: nocopy"},
		{raw: "a:b:c:d", err: "invalid volume specification: 'a:b:c:d'"},
	}
	for _, tc := range cases {
		got, err := parseBind(tc.raw)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.raw, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.raw, got, err, tc.want)
		}
	}
}

func TestParseMount(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		m    mount.Mount
		want mountPoint
		err  string
	}{
		{"bind ro", mount.Mount{Type: "bind", Source: dir, Target: "/c", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: "rshared"}},
			mountPoint{Type: "bind", Source: dir, Destination: "/c", Mode: "ro", Propagation: "rshared"}, ""},
		{"bind missing", mount.Mount{Type: "bind", Source: dir + "/nope", Target: "/c"}, mountPoint{}, "bind source path does not exist: " + dir + "/nope"},
		{"bind relative", mount.Mount{Type: "bind", Source: "rel", Target: "/c"}, mountPoint{}, "mount path must be absolute"},
		{"bind no source", mount.Mount{Type: "bind", Target: "/c"}, mountPoint{}, "field Source must not be empty"},
		{"bind bad propagation", mount.Mount{Type: "bind", Source: dir, Target: "/c", BindOptions: &mount.BindOptions{Propagation: "weird"}}, mountPoint{}, "invalid propagation mode"},
		{"volume nocopy", mount.Mount{Type: "volume", Source: "v", Target: "/c", VolumeOptions: &mount.VolumeOptions{NoCopy: true}},
			mountPoint{Type: "volume", Name: "v", Destination: "/c", RW: true}, ""},
		{"anonymous volume", mount.Mount{Type: "volume", Target: "/c"}, mountPoint{Type: "volume", Destination: "/c", RW: true, Anonymous: true, CopyData: true}, ""},
		{"volume with bind options", mount.Mount{Type: "volume", Target: "/c", BindOptions: &mount.BindOptions{}}, mountPoint{}, "field BindOptions must not be specified"},
		{"tmpfs", mount.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}},
			mountPoint{Type: "tmpfs", Destination: "/t", RW: true, Tmpfs: "size=1048576,mode=1777"}, ""},
		{"tmpfs go mode", mount.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{Mode: os.ModeSticky | 0o755}},
			mountPoint{Type: "tmpfs", Destination: "/t", RW: true, Tmpfs: "mode=1755"}, ""},
		{"tmpfs with source", mount.Mount{Type: "tmpfs", Source: "x", Target: "/t"}, mountPoint{}, "field Source must not be specified"},
		{"relative target", mount.Mount{Type: "tmpfs", Target: "t"}, mountPoint{}, "mount path must be absolute"},
		{"unknown type", mount.Mount{Type: "npipe", Target: "/t"}, mountPoint{}, "mount type unknown"},
	}
	for _, tc := range cases {
		got, _, err := parseMount(tc.m)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %+v %v, want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestCheckTmpfsOptions(t *testing.T) {
	for _, ok := range []string{"", "size=1m", "rw,exec,mode=1777,uid=1,gid=2,nr_inodes=10"} {
		if err := checkTmpfsOptions(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"bogus", "mode=999", "foo=1"} {
		if err := checkTmpfsOptions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMountAt(t *testing.T) {
	mps := []mountPoint{
		{Type: "volume", Name: "a", Destination: "/data"},
		{Type: "bind", Source: "/h", Destination: "/data/sub"},
		{Type: "tmpfs", Destination: "/t"},
	}
	cases := []struct{ p, dest, rest string }{
		{"/data", "/data", "/"},
		{"/data/", "/data", "/"},
		{"/data/.", "/data", "/."},
		{"/data/x/y", "/data", "/x/y"},
		{"data/sub/f", "/data/sub", "/f"},
		{"/data/subx", "/data", "/subx"},
		{"/datax", "", ""},
		{"/t/f", "", ""},
		{"/", "", ""},
	}
	for _, tc := range cases {
		mp, rest, ok := mountAt(mps, tc.p)
		if ok != (tc.dest != "") || mp.Destination != tc.dest || rest != tc.rest {
			t.Errorf("%s: %q %q %v, want %q %q", tc.p, mp.Destination, rest, ok, tc.dest, tc.rest)
		}
	}
}
