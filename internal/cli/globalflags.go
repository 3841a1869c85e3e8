package cli

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/docker/go-connections/tlsconfig"
)

// globalOptions are the options docker accepts before the command name: the daemon address and TLS.
type globalOptions struct {
	host string
	// tls and tlsVerify are nil unless given on the command line, so that $DOCKER_TLS_VERIFY applies.
	tls, tlsVerify         *bool
	caCert, cert, key      string
	caSet, certSet, keySet bool
}

// splitGlobalFlags takes the global options off the front of args (before the command name), where docker
// accepts them, so subcommands keep their own -H (history -H).
func splitGlobalFlags(args []string) (g globalOptions, rest []string, err error) {
	strFlags := map[string]func(string){
		"-H":          func(v string) { g.host = v },
		"--host":      func(v string) { g.host = v },
		"--tlscacert": func(v string) { g.caCert, g.caSet = v, true },
		"--tlscert":   func(v string) { g.cert, g.certSet = v, true },
		"--tlskey":    func(v string) { g.key, g.keySet = v, true },
	}
	boolFlags := map[string]**bool{"--tls": &g.tls, "--tlsverify": &g.tlsVerify}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if set, ok := strFlags[name]; ok {
			if !hasVal {
				if i+1 >= len(args) {
					return g, nil, fmt.Errorf("flag needs an argument: %s", a)
				}
				val = args[i+1]
				i++
			}
			set(val)
			continue
		}
		if p, ok := boolFlags[name]; ok {
			b := true
			if hasVal {
				if b, err = strconv.ParseBool(val); err != nil {
					return g, nil, fmt.Errorf("invalid argument %q for %q flag: %v", val, name, err)
				}
			}
			*p = &b
			continue
		}
		if strings.HasPrefix(a, "-H") && len(a) > 2 {
			g.host = strings.TrimPrefix(a[2:], "=")
			continue
		}
		break
	}
	return g, args[i:], nil
}

// clientTLS is the TLS configuration the docker CLI would use with these options and environment, or nil
// for none. As in docker: --tlsverify (or a non-empty $DOCKER_TLS_VERIFY) verifies the daemon against
// ca.pem and turns TLS on; --tls alone encrypts without verifying the daemon. Certificates default to
// ca.pem, cert.pem and key.pem in $DOCKER_CERT_PATH (or ~/.docker); a default client certificate or key
// that does not exist is left out rather than being an error.
func clientTLS(g globalOptions, getenv func(string) string) (*tls.Config, error) {
	verify := getenv("DOCKER_TLS_VERIFY") != ""
	if g.tlsVerify != nil {
		verify = *g.tlsVerify
	}
	on := verify || g.tlsVerify != nil || (g.tls != nil && *g.tls)
	if !on {
		return nil, nil
	}
	dir := getenv("DOCKER_CERT_PATH")
	if dir == "" {
		dir = getenv("DOCKER_CONFIG")
	}
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".docker")
	}
	pick := func(v string, set bool, name string) string {
		if set {
			return v
		}
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil && name != "ca.pem" {
			return ""
		}
		return p
	}
	opts := tlsconfig.Options{
		CertFile:           pick(g.cert, g.certSet, "cert.pem"),
		KeyFile:            pick(g.key, g.keySet, "key.pem"),
		InsecureSkipVerify: !verify,
		// Only the given CA vouches for the daemon, not the system's web roots.
		ExclusiveRootPools: true,
	}
	if verify {
		opts.CAFile = pick(g.caCert, g.caSet, "ca.pem")
	}
	cfg, err := tlsconfig.Client(opts)
	if err != nil {
		return nil, fmt.Errorf("could not load the TLS configuration: %w", err)
	}
	return cfg, nil
}
