package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/moby/term"
	"github.com/spf13/cobra"
)

// Registry credentials live in the docker CLI's config file ($DOCKER_CONFIG/config.json, else
// ~/.docker/config.json), in its format, so `docker login` and `berth login` share them. Keys of the
// file berth does not know are kept as they are.

func configPath(getenv func(string) string) string {
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home := getenv("HOME")
	if home == "" {
		home, _ = os.UserHomeDir()
	}
	return filepath.Join(home, ".docker", "config.json")
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

func readConfigFile(path string) (map[string]json.RawMessage, map[string]authEntry, error) {
	raw := map[string]json.RawMessage{}
	auths := map[string]authEntry{}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return raw, auths, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return raw, auths, nil
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if a, ok := raw["auths"]; ok {
		if err := json.Unmarshal(a, &auths); err != nil {
			return nil, nil, fmt.Errorf("%s: auths: %w", path, err)
		}
	}
	return raw, auths, nil
}

func writeConfigFile(path string, raw map[string]json.RawMessage, auths map[string]authEntry) error {
	a, err := json.Marshal(auths)
	if err != nil {
		return err
	}
	raw["auths"] = a
	b, err := json.MarshalIndent(raw, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// serverKey is how the config file names a registry: Docker Hub under its index URL, others by host.
func serverKey(host string) string {
	switch host {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return "https://index.docker.io/v1/"
	}
	return host
}

func normalizeHost(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "https://"), "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return s
}

// authFor returns the encoded X-Registry-Auth for the registry of ref, or "" when not logged in.
func (e *env) authFor(ref string) string {
	host := "docker.io"
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		host = reference.Domain(n)
	}
	_, auths, err := readConfigFile(configPath(e.getenv))
	if err != nil {
		return ""
	}
	ent, ok := auths[serverKey(host)]
	if !ok {
		ent, ok = auths["https://"+host]
	}
	if !ok {
		return ""
	}
	ac := registry.AuthConfig{ServerAddress: serverKey(host), IdentityToken: ent.IdentityToken}
	if dec, err := base64.StdEncoding.DecodeString(ent.Auth); err == nil {
		if u, p, ok := strings.Cut(string(dec), ":"); ok {
			ac.Username, ac.Password = u, p
		}
	}
	enc, err := registry.EncodeAuthConfig(ac)
	if err != nil {
		return ""
	}
	return enc
}

// showProgress renders a pull or push stream: progress bars on a terminal, plain lines otherwise.
func (e *env) showProgress(rc io.Reader, w io.Writer) error {
	fd, isTerm := term.GetFdInfo(w)
	return jsonmessage.DisplayJSONMessagesStream(rc, w, fd, isTerm, nil)
}

// parseAllTagsRef reads pull's or push's reference; with --all-tags it must name only a repository.
func parseAllTagsRef(arg string, all bool) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(arg)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %w", err)
	}
	if all && !reference.IsNameOnly(n) {
		return nil, errors.New("tag can't be used with --all-tags/-a")
	}
	return n, nil
}

func newPullCommand(e *env) *cobra.Command {
	var all, quiet bool
	var platform string
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseAllTagsRef(args[0], all)
			if err != nil {
				return err
			}
			if all {
				return e.do(cmd.Context(), func(c *client.Client) error {
					rc, err := c.ImagePull(cmd.Context(), n.String(), image.PullOptions{All: true, RegistryAuth: e.authFor(n.String()), Platform: platform})
					if err != nil {
						return err
					}
					defer rc.Close()
					return e.showProgress(rc, e.Out)
				})
			}
			if reference.IsNameOnly(n) {
				fmt.Fprintln(e.Out, "Using default tag: latest")
			}
			return e.pull(cmd.Context(), args[0], platform, quiet, e.Out)
		},
	}
	cmd.Flags().BoolVarP(&all, "all-tags", "a", false, "Download all tagged images in the repository")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	cmd.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

// pull pulls ref, printing progress to w (nothing but the reference when quiet).
func (e *env) pull(ctx context.Context, ref, platform string, quiet bool, w io.Writer) error {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("invalid reference format: %w", err)
	}
	n = reference.TagNameOnly(n)
	return e.do(ctx, func(c *client.Client) error {
		rc, err := c.ImagePull(ctx, n.String(), image.PullOptions{RegistryAuth: e.authFor(n.String()), Platform: platform})
		if err != nil {
			return err
		}
		defer rc.Close()
		out := w
		if quiet {
			out = io.Discard
		}
		if err := e.showProgress(rc, out); err != nil {
			return err
		}
		fmt.Fprintln(w, n.String())
		return nil
	})
}

func newPushCommand(e *env) *cobra.Command {
	var all, quiet bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := parseAllTagsRef(args[0], all)
			if err != nil {
				return err
			}
			if !all && reference.IsNameOnly(n) {
				fmt.Fprintln(e.Out, "Using default tag: latest")
				n = reference.TagNameOnly(n)
			}
			ctx := cmd.Context()
			return e.do(ctx, func(c *client.Client) error {
				rc, err := c.ImagePush(ctx, n.String(), image.PushOptions{All: all, RegistryAuth: e.authFor(n.String())})
				if err != nil {
					return err
				}
				defer rc.Close()
				out := io.Writer(e.Out)
				if quiet {
					out = io.Discard
				}
				if err := e.showProgress(rc, out); err != nil {
					return err
				}
				if quiet {
					fmt.Fprintln(e.Out, n.String())
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&all, "all-tags", "a", false, "Push all tags of an image to the repository")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return cmd
}

func newLoginCommand(e *env) *cobra.Command {
	var user, pass string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "docker.io"
			if len(args) == 1 {
				server = normalizeHost(args[0])
			}
			if passStdin {
				if pass != "" {
					return errors.New("--password and --password-stdin are mutually exclusive")
				}
				if user == "" {
					return errors.New("Must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(e.In)
				if err != nil {
					return err
				}
				pass = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" || pass == "" {
				// Prompting needs a terminal; the flags are what scripts use.
				in := bufio.NewReader(e.In)
				if user == "" {
					fmt.Fprint(e.Out, "Username: ")
					l, _ := in.ReadString('\n')
					user = strings.TrimSpace(l)
				}
				if pass == "" {
					if fd, isTerm := term.GetFdInfo(e.In); isTerm {
						if st, err := term.SaveState(fd); err == nil {
							term.DisableEcho(fd, st)
							defer term.RestoreTerminal(fd, st)
						}
					}
					fmt.Fprint(e.Out, "Password: ")
					l, _ := in.ReadString('\n')
					pass = strings.TrimRight(l, "\r\n")
					fmt.Fprintln(e.Out)
				}
				if user == "" || pass == "" {
					return errors.New("Error: Cannot perform an interactive login from a non TTY device")
				}
			} else if !passStdin {
				fmt.Fprintln(e.Err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			ctx := cmd.Context()
			ac := registry.AuthConfig{Username: user, Password: pass, ServerAddress: serverKey(server)}
			var resp registry.AuthenticateOKBody
			if err := e.do(ctx, func(c *client.Client) error {
				var err error
				resp, err = c.RegistryLogin(ctx, ac)
				return err
			}); err != nil {
				return err
			}
			path := configPath(e.getenv)
			raw, auths, err := readConfigFile(path)
			if err != nil {
				return err
			}
			ent := authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}
			if resp.IdentityToken != "" {
				ent = authEntry{IdentityToken: resp.IdentityToken, Auth: base64.StdEncoding.EncodeToString([]byte(user + ":"))}
			}
			auths[serverKey(server)] = ent
			if err := writeConfigFile(path, raw, auths); err != nil {
				return fmt.Errorf("saving credentials: %w", err)
			}
			fmt.Fprintln(e.Out, resp.Status)
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "Username")
	cmd.Flags().StringVarP(&pass, "password", "p", "", "Password")
	cmd.Flags().BoolVar(&passStdin, "password-stdin", false, "Take the password from stdin")
	return cmd
}

func newLogoutCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "docker.io"
			if len(args) == 1 {
				server = normalizeHost(args[0])
			}
			key := serverKey(server)
			path := configPath(e.getenv)
			raw, auths, err := readConfigFile(path)
			if err != nil {
				return err
			}
			if _, ok := auths[key]; !ok {
				fmt.Fprintf(e.Out, "Not logged in to %s\n", key)
				return nil
			}
			fmt.Fprintf(e.Out, "Removing login credentials for %s\n", key)
			delete(auths, key)
			return writeConfigFile(path, raw, auths)
		},
	}
}
