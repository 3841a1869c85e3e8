package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// listenAddr completes a --listen-addr: default 0.0.0.0:2377, a bare host gets port 2377.
func listenAddr(a string) (string, error) {
	if a == "" {
		return "0.0.0.0:" + DefaultPort, nil
	}
	a = withPort(a, DefaultPort)
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid listen address %q: %w", a, err))
	}
	if host != "" && net.ParseIP(host) == nil {
		if ip, err := interfaceIP(host); err == nil {
			return withPort(ip, portOf(a)), nil
		}
		return "", errdefs.InvalidParameter(fmt.Errorf("invalid listen address %q: not an IP address or interface", a))
	}
	return a, nil
}

// advertiseAddr finds the address other nodes reach this one at: the one given (IP, IP:port or an
// interface name), else the listen address's IP, else the local address that routes to remote, else the
// only global unicast IPv4 address of this host.
func advertiseAddr(a, listen, remote string) (string, error) {
	port := portOf(listen)
	if a != "" {
		host, p, err := net.SplitHostPort(a)
		if err != nil {
			host, p = a, port
		}
		if net.ParseIP(host) == nil {
			ip, err := interfaceIP(host)
			if err != nil {
				return "", errdefs.InvalidParameter(fmt.Errorf("advertise address must be a non-zero IP address or network interface (with optional port number)"))
			}
			host = ip
		}
		if ip := net.ParseIP(host); ip.IsUnspecified() {
			return "", errdefs.InvalidParameter(errors.New("advertise address must be a non-zero IP address or network interface (with optional port number)"))
		}
		return net.JoinHostPort(host, p), nil
	}
	if h := hostOf(listen); h != "" && !net.ParseIP(h).IsUnspecified() {
		return listen, nil
	}
	if remote != "" {
		if c, err := net.Dial("udp", remote); err == nil {
			ip := c.LocalAddr().(*net.UDPAddr).IP.String()
			c.Close()
			return net.JoinHostPort(ip, port), nil
		}
	}
	var found []string
	ifs, _ := net.Interfaces()
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 || isBridge(ifc.Name) {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				found = append(found, fmt.Sprintf("%s on %s", ipn.IP, ifc.Name))
			}
		}
	}
	switch len(found) {
	case 1:
		return net.JoinHostPort(strings.Fields(found[0])[0], port), nil
	case 0:
		return "", errdefs.InvalidParameter(errors.New("could not find a local address to advertise: please specify one with --advertise-addr"))
	}
	return "", errdefs.InvalidParameter(fmt.Errorf("could not choose an IP address to advertise since this system has multiple addresses on different interfaces (%s) - specify one with --advertise-addr", strings.Join(found, " and ")))
}

func isBridge(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name, "bridge"))
	return err == nil
}

func interfaceIP(name string) (string, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return "", err
	}
	addrs, _ := ifc.Addrs()
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
	}
	return "", fmt.Errorf("interface %s has no IPv4 address", name)
}

func withPort(a, port string) string {
	if _, _, err := net.SplitHostPort(a); err == nil {
		return a
	}
	return net.JoinHostPort(strings.Trim(a, "[]"), port)
}

func hostOf(a string) string {
	h, _, err := net.SplitHostPort(a)
	if err != nil {
		return ""
	}
	return h
}

func portOf(a string) string {
	_, p, err := net.SplitHostPort(a)
	if err != nil || p == "" {
		return DefaultPort
	}
	return p
}
