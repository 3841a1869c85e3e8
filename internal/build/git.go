package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// IsGitURL tells whether a build context names a git repository (as POST /build's remote, or on the
// command line): file://, git://, ssh:// and git@ addresses, and http(s) ones ending in ".git".
func IsGitURL(s string) bool {
	u, _, _ := strings.Cut(s, "#")
	switch {
	case strings.HasPrefix(u, "git://"), strings.HasPrefix(u, "git@"), strings.HasPrefix(u, "ssh://"), strings.HasPrefix(u, "file://"):
		return true
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		return strings.HasSuffix(u, ".git")
	}
	return false
}

// openGitContext clones remote ("url#ref:subdir", both parts optional) with the git binary, as Docker's
// builder does, and uses the checkout (without .git) as the context.
func openGitContext(ctx context.Context, tmpRoot, remote, dockerfile string) (*buildContext, error) {
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	url, frag, _ := strings.Cut(remote, "#")
	ref, subdir, _ := strings.Cut(frag, ":")
	if strings.HasPrefix(ref, "-") || strings.HasPrefix(url, "-") {
		return nil, errdefs.InvalidParameter(fmt.Errorf("invalid git reference %q", remote))
	}
	dir, err := os.MkdirTemp(tmpRoot, "context-")
	if err != nil {
		return nil, errdefs.System(err)
	}
	c := &buildContext{dir: dir}
	repo := filepath.Join(dir, "repo")
	if err := git(ctx, "", "clone", "--quiet", "--recurse-submodules", "--", url, repo); err != nil {
		c.Close()
		return nil, errdefs.InvalidParameter(fmt.Errorf("unable to clone git repository %s: %w", url, err))
	}
	if ref != "" {
		if err := git(ctx, repo, "checkout", "--quiet", ref, "--"); err != nil {
			c.Close()
			return nil, errdefs.InvalidParameter(fmt.Errorf("unable to checkout %q in %s: %w", ref, url, err))
		}
		if err := git(ctx, repo, "submodule", "update", "--quiet", "--init", "--recursive"); err != nil {
			c.Close()
			return nil, errdefs.InvalidParameter(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(repo, ".git")); err != nil {
		c.Close()
		return nil, errdefs.System(err)
	}
	top := repo
	if subdir != "" {
		top = filepath.Join(repo, filepath.FromSlash(path.Clean("/"+subdir)))
		base, _ := filepath.EvalSymlinks(repo)
		real, err := filepath.EvalSymlinks(top)
		if err != nil || (real != base && !strings.HasPrefix(real, base+string(filepath.Separator))) {
			c.Close()
			return nil, errdefs.InvalidParameter(fmt.Errorf("%s is not a directory in the repository", subdir))
		}
		if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
			c.Close()
			return nil, errdefs.InvalidParameter(fmt.Errorf("%s is not a directory in the repository", subdir))
		}
		top = real
	}
	if err := c.finish(top, dockerfile); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-c", "protocol.file.allow=always"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
