package cli

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/spf13/cobra"
)

func newPortCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var info container.InspectResponse
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				info, err = c.ContainerInspect(ctx, args[0])
				return err
			})
			if err != nil {
				return err
			}
			var ports nat.PortMap
			if info.NetworkSettings != nil {
				ports = info.NetworkSettings.Ports
			}
			lines, err := portLines(ports, args[1:])
			if err != nil {
				return fmt.Errorf("Error: No public port '%s' published for %s", err.Error(), args[0])
			}
			for _, l := range lines {
				fmt.Fprintln(e.Out, l)
			}
			return nil
		},
	}
}

// portLines renders published ports as docker does ("80/tcp -> 0.0.0.0:8080"), sorted by port. With a
// filter ("80" or "80/udp") only that port is shown; an unpublished one is an error carrying "80/tcp".
func portLines(ports nat.PortMap, filter []string) ([]string, error) {
	var out []string
	if len(filter) == 1 {
		port, proto, _ := strings.Cut(filter[0], "/")
		if proto == "" {
			proto = "tcp"
		}
		key := nat.Port(port + "/" + proto)
		bindings, ok := ports[key]
		if !ok || len(bindings) == 0 {
			return nil, fmt.Errorf("%s", key)
		}
		for _, b := range bindings {
			out = append(out, net.JoinHostPort(b.HostIP, b.HostPort))
		}
		return out, nil
	}
	keys := make([]nat.Port, 0, len(ports))
	for k := range ports {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, _ := strconv.Atoi(keys[i].Port())
		b, _ := strconv.Atoi(keys[j].Port())
		if a != b {
			return a < b
		}
		return keys[i].Proto() < keys[j].Proto()
	})
	for _, k := range keys {
		for _, b := range ports[k] {
			out = append(out, fmt.Sprintf("%s -> %s", k, net.JoinHostPort(b.HostIP, b.HostPort)))
		}
	}
	return out, nil
}
