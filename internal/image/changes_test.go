package image

import (
	"reflect"
	"testing"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	cases := []struct {
		change string
		check  func(c dockerspec.DockerOCIImageConfig) bool
	}{
		{`CMD ["echo", "a b"]`, func(c dockerspec.DockerOCIImageConfig) bool { return reflect.DeepEqual(c.Cmd, []string{"echo", "a b"}) }},
		{`cmd echo $HOME`, func(c dockerspec.DockerOCIImageConfig) bool {
			return reflect.DeepEqual(c.Cmd, []string{"/bin/sh", "-c", "echo $HOME"})
		}},
		{`ENTRYPOINT ["/init"]`, func(c dockerspec.DockerOCIImageConfig) bool {
			return reflect.DeepEqual(c.Entrypoint, []string{"/init"})
		}},
		{`ENV PATH=/bin:/sbin X='single q' Y=a\ b`, func(c dockerspec.DockerOCIImageConfig) bool {
			return reflect.DeepEqual(c.Env, []string{"PATH=/bin:/sbin", "X=single q", "Y=a b"})
		}},
		{`ENV LEGACY value with spaces`, func(c dockerspec.DockerOCIImageConfig) bool {
			return reflect.DeepEqual(c.Env, []string{"LEGACY=value with spaces"})
		}},
		{`LABEL "com.x.y"="v 1" plain=2`, func(c dockerspec.DockerOCIImageConfig) bool {
			return c.Labels["com.x.y"] == "v 1" && c.Labels["plain"] == "2"
		}},
		{`EXPOSE 8000-8001/udp 80`, func(c dockerspec.DockerOCIImageConfig) bool {
			_, a := c.ExposedPorts["8000/udp"]
			_, b := c.ExposedPorts["8001/udp"]
			_, d := c.ExposedPorts["80/tcp"]
			return a && b && d && len(c.ExposedPorts) == 3
		}},
		{`VOLUME ["/data", "/logs"]`, func(c dockerspec.DockerOCIImageConfig) bool { return len(c.Volumes) == 2 }},
		{`VOLUME /a /b`, func(c dockerspec.DockerOCIImageConfig) bool { _, ok := c.Volumes["/b"]; return ok }},
		{`WORKDIR rel`, func(c dockerspec.DockerOCIImageConfig) bool { return c.WorkingDir == "/rel" }},
		{`USER 1000:1000`, func(c dockerspec.DockerOCIImageConfig) bool { return c.User == "1000:1000" }},
		{`STOPSIGNAL SIGKILL`, func(c dockerspec.DockerOCIImageConfig) bool { return c.StopSignal == "SIGKILL" }},
	}
	for _, tc := range cases {
		var c dockerspec.DockerOCIImageConfig
		if err := applyChanges(&c, []string{tc.change}); err != nil {
			t.Errorf("%s: %v", tc.change, err)
			continue
		}
		if !tc.check(c) {
			t.Errorf("%s: config %+v", tc.change, c)
		}
	}
	for _, bad := range []string{"RUN x", "EXPOSE abc", "ENV", `LABEL "unterminated`, "WORKDIR", "EXPOSE 80/xyz"} {
		var c dockerspec.DockerOCIImageConfig
		if err := applyChanges(&c, []string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
