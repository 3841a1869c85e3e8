// Package testutil builds the fixtures Berth's tests share. Images are made at test time from Debian's
// busybox-static, never downloaded.
package testutil

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// BusyboxPath is where Debian's busybox-static installs its binary.
const BusyboxPath = "/bin/busybox"

// RequireRoot skips a test that needs root (namespaces, mounts, cgroups).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// RequireBusybox skips unless a static busybox is installed (apt-get install busybox-static).
func RequireBusybox(t testing.TB) {
	t.Helper()
	out, err := exec.Command("file", "-L", BusyboxPath).CombinedOutput()
	if err != nil && !fileExists(BusyboxPath) {
		t.Skip("busybox-static not installed")
	}
	if err == nil && !strings.Contains(string(out), "statically linked") && !strings.Contains(string(out), "static-pie") {
		t.Skipf("%s is not static: %s", BusyboxPath, out)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// BusyboxRootfs writes a minimal root filesystem into dir: /bin/busybox, a symlink in /bin for every
// applet, /etc/passwd and /etc/group with root, nobody and a user "berth" (1000:1000, also in group
// "extra" 2000), and empty /tmp, /root, /home/berth, /proc, /sys, /dev.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	RequireBusybox(t)
	if err := WriteBusyboxRootfs(dir); err != nil {
		t.Fatal(err)
	}
}

// WriteBusyboxRootfs is BusyboxRootfs for callers without a testing.TB (TestMain, set-up scripts).
func WriteBusyboxRootfs(dir string) error {
	for _, d := range []string{"bin", "etc", "tmp", "root", "home/berth", "proc", "sys", "dev", "var"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return fmt.Errorf("busybox-static is needed (apt-get install busybox-static): %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bin, 0o755); err != nil {
		return err
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return fmt.Errorf("listing busybox applets: %w", err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1000:berth:/home/berth:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nberth:x:1000:\nextra:x:2000:berth\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.Chown(filepath.Join(dir, "home/berth"), 1000, 1000)
}

// WriteBusyboxTar writes the busybox tree as a tar archive at path, using scratch as a work directory.
func WriteBusyboxTar(scratch, path string) error {
	dir, err := os.MkdirTemp(scratch, "busybox-rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := WriteBusyboxRootfs(dir); err != nil {
		return err
	}
	return TarDir(dir, path)
}

// BusyboxTar writes the BusyboxRootfs tree as an uncompressed tar archive at path (the input of
// `berth import`) and returns path.
func BusyboxTar(t testing.TB, path string) string {
	t.Helper()
	dir := t.TempDir()
	BusyboxRootfs(t, dir)
	if err := TarDir(dir, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TarDir archives the tree under dir into a tar file at path, with names relative to dir.
func TarDir(dir, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			defer src.Close()
			if _, err := io.Copy(tw, src); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}
