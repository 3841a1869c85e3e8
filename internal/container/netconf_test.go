package container

import (
	"strconv"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
)

func TestPortRequests(t *testing.T) {
	exposed := nat.PortSet{"80/tcp": {}, "53/udp": {}, "443/tcp": {}}
	bindings := nat.PortMap{
		"443/tcp":  {{HostIP: "127.0.0.1", HostPort: "8443"}},
		"9000/tcp": {{HostPort: "9000-9005"}},
	}
	got := portRequests(exposed, bindings, true)
	want := []string{"tcp 127.0.0.1:8443->443", "tcp :9000->9000", "udp :0->53", "tcp :0->80"}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i, r := range got {
		if s := r.Proto + " " + r.HostIP + ":" + strconv.Itoa(int(r.HostPort)) + "->" + strconv.Itoa(int(r.CtrPort)); s != want[i] {
			t.Errorf("request %d: %s, want %s", i, s, want[i])
		}
	}
	if n := len(portRequests(exposed, nil, false)); n != 0 {
		t.Errorf("exposed ports without -P are not published, got %d", n)
	}
}

func TestParseExtraHostAndPorts(t *testing.T) {
	for _, ok := range []string{"db:10.0.0.1", "db=10.0.0.1", "gw:host-gateway", "v6:[::1]"} {
		if _, _, err := parseExtraHost(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"db", ":1.2.3.4", "db:notanip"} {
		if _, _, err := parseExtraHost(bad); err == nil {
			t.Errorf("%s should be refused", bad)
		}
	}
	if err := validatePorts(nat.PortMap{"80/tcp": {{HostPort: "x"}}}); err == nil {
		t.Error("a non-numeric host port should be refused")
	}
	if err := validatePorts(nat.PortMap{"80/tcp": {{HostIP: "1.2.3", HostPort: "80"}}}); err == nil {
		t.Error("a bad host IP should be refused")
	}
}

func TestEndpointOrder(t *testing.T) {
	r := &record{HostConfig: &container.HostConfig{NetworkMode: "zeta"}, Networking: &network.NetworkingConfig{
		EndpointsConfig: map[string]*network.EndpointSettings{"beta": {}, "zeta": {}, "alpha": {}}}}
	got := endpointOrder(r)
	if len(got) != 3 || got[0] != "zeta" || got[1] != "alpha" || got[2] != "beta" {
		t.Fatalf("order %v: the primary network first, then by name", got)
	}
}
