package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// debianCache is where the Debian base's root filesystem tar is kept between test runs: debootstrap
// takes a minute or two, the tar a second to import.
func debianCache() string {
	if d := os.Getenv("BERTH_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/berth-test"
}

// debianBase imports a minimal Debian bookworm made with debootstrap (from Debian's mirror) as
// debian-it:bookworm, and returns that name.
func debianBase(t *testing.T) string {
	t.Helper()
	const ref = "debian-it:bookworm"
	if docker(t, "image", "inspect", ref).code == 0 {
		return ref
	}
	tarPath := filepath.Join(debianCache(), "debian-bookworm-minbase.tar")
	if _, err := os.Stat(tarPath); err != nil {
		bin, err := exec.LookPath("debootstrap")
		if err != nil {
			t.Skip("debootstrap is not installed (apt install debootstrap)")
		}
		if err := os.MkdirAll(debianCache(), 0o755); err != nil {
			t.Fatal(err)
		}
		root, err := os.MkdirTemp(debianCache(), "root-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(root)
		mirror := os.Getenv("BERTH_TEST_DEBIAN_MIRROR")
		if mirror == "" {
			mirror = "http://deb.debian.org/debian"
		}
		if out, err := exec.Command(bin, "--variant=minbase", "bookworm", root, mirror).CombinedOutput(); err != nil {
			t.Fatalf("debootstrap: %v\n%s", err, tail(string(out), 2000))
		}
		tmp := tarPath + ".tmp"
		if out, err := exec.Command("tar", "-C", root, "--numeric-owner", "-cf", tmp, ".").CombinedOutput(); err != nil {
			os.Remove(tmp)
			t.Fatalf("tar: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, tarPath); err != nil {
			t.Fatal(err)
		}
	}
	if r := docker(t, "import", tarPath, ref); r.code != 0 {
		t.Fatalf("import: %s", r)
	}
	return ref
}

// A real distribution as the base: users, packages, bash, a non-root user, and a cached rebuild,
// through both CLIs.
func TestBuildOnDebian(t *testing.T) {
	base := debianBase(t)
	dir := buildContext(t, map[string]string{
		"hello.sh": "#!/bin/bash\necho \"hello from Debian $(cat /etc/debian_version) as $(whoami) in $PWD\"\n",
		"Dockerfile": "FROM " + base + "\n" +
			"RUN useradd -m app && dpkg -s coreutils | grep -q 'Status: install ok installed'\n" +
			"COPY --chmod=755 hello.sh /usr/local/bin/hello\n" +
			"USER app\nWORKDIR /home/app\nCMD [\"hello\"]\n",
	})
	tag := "it-debian:1"
	rmiOnCleanup(t, tag, tag+"b")
	if r := legacyBuild(t, dir, "-t", tag, "."); r.code != 0 {
		t.Fatalf("docker build: %s", r)
	}
	out := mustDocker(t, "run", "--rm", "--network", "none", tag)
	if !strings.HasPrefix(out, "hello from Debian 12") || !strings.HasSuffix(out, "as app in /home/app") {
		t.Errorf("run: %q", out)
	}
	// Unchanged: every step from the cache, here through berth.
	r := berthBuild(t, dir, "-t", tag+"b", ".")
	if r.code != 0 || strings.Count(r.stdout, "CACHED") < 4 {
		t.Errorf("cached rebuild through berth: %s", r)
	}
}
