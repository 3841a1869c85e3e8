package integration

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"
)

func TestGoSDK(t *testing.T) {
	c := sdk(t)
	ctx := ctxT(t, 30*time.Second)
	ping, err := c.Ping(ctx)
	if err != nil || ping.APIVersion == "" || ping.OSType != "linux" {
		t.Fatalf("ping: %+v %v", ping, err)
	}
	imgs, err := c.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", "busybox"))})
	if err != nil || len(imgs) == 0 {
		t.Fatalf("image list: %v %v", imgs, err)
	}
	name := uniqueName(t)
	rmOnCleanup(t, name)
	created, err := c.ContainerCreate(ctx, &container.Config{
		Image: busybox, Cmd: []string{"sh", "-c", "echo to-out; echo to-err >&2; exit 9"},
		Env: []string{"X=1"}, Labels: map[string]string{"sdk": "yes"},
	}, &container.HostConfig{Resources: container.Resources{Memory: 64 << 20}}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	waitC, errC := c.ContainerWait(ctx, created.ID, container.WaitConditionNextExit)
	if err := c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case w := <-waitC:
		if w.StatusCode != 9 {
			t.Errorf("exit %d", w.StatusCode)
		}
	case err := <-errC:
		t.Fatal(err)
	}
	rc, err := c.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, rc); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	rc.Close()
	if out.String() != "to-out\n" || errb.String() != "to-err\n" {
		t.Errorf("logs: out %q err %q", out.String(), errb.String())
	}
	info, err := c.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.ExitCode != 9 || info.HostConfig.Memory != 64<<20 || info.Config.Labels["sdk"] != "yes" || info.Name != "/"+name {
		t.Errorf("inspect: state %+v memory %d labels %v name %s", info.State, info.HostConfig.Memory, info.Config.Labels, info.Name)
	}
	if _, err := c.ContainerInspect(ctx, "nosuchcontainer"); !errdefs.IsNotFound(err) {
		t.Errorf("inspect of a missing container: %v", err)
	}
	if err := c.ContainerRemove(ctx, name, container.RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	list, err := c.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("name", name))})
	if err != nil || len(list) != 0 {
		t.Errorf("container still listed: %v %v", list, err)
	}
}

func TestGoSDKAttachStdin(t *testing.T) {
	c := sdk(t)
	ctx := ctxT(t, 30*time.Second)
	created, err := c.ContainerCreate(ctx, &container.Config{
		Image: busybox, Cmd: []string{"sh", "-c", "tr a-z A-Z; echo end >&2"},
		OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true,
	}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	rmOnCleanup(t, created.ID)
	hj, err := c.ContainerAttach(ctx, created.ID, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer hj.Close()
	if err := c.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := hj.Conn.Write([]byte("shout\n")); err != nil {
		t.Fatal(err)
	}
	_ = hj.CloseWrite()
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, hj.Reader); err != nil {
		t.Fatal(err)
	}
	if out.String() != "SHOUT\n" || strings.TrimSpace(errb.String()) != "end" {
		t.Errorf("attach: out %q err %q", out.String(), errb.String())
	}
}
