package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
)

// newInspectCommand builds `inspect`; kind fixes the object type for `container inspect`/`image inspect`.
func newInspectCommand(e *env, kind string) *cobra.Command {
	var format, typ string
	var size bool
	use := "inspect [OPTIONS] NAME|ID [NAME|ID...]"
	if kind != "" {
		use = "inspect [OPTIONS] " + strings.ToUpper(kind) + " [" + strings.ToUpper(kind) + "...]"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: "Return low-level information on objects",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := typ
			if kind != "" {
				t = kind
			}
			switch t {
			case "", "container", "image", "volume":
			default:
				return fmt.Errorf("%q is not a valid value for --type", t)
			}
			return runInspect(cmd.Context(), e, args, t, format, size)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	if kind == "" {
		cmd.Flags().StringVar(&typ, "type", "", "Only inspect objects of the given type")
	}
	return cmd
}

// inspected is one object: the typed value (templates see Go field names, as docker's do) and the raw
// JSON the daemon sent (printed as-is, so fields the SDK does not know survive).
type inspected struct {
	typed any
	raw   []byte
}

func runInspect(ctx context.Context, e *env, names []string, typ, format string, size bool) error {
	var objs []inspected
	var errs []string
	for _, name := range names {
		obj, err := inspectOne(ctx, e, name, typ, size)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		objs = append(objs, obj)
	}
	if format == "" {
		// Joined by hand rather than json.Marshal, which would escape <, > and & in the daemon's text.
		b := []byte("[")
		for i, o := range objs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, o.raw...)
		}
		b = append(b, ']')
		var buf bytes.Buffer
		if err := json.Indent(&buf, b, "", "    "); err != nil {
			return err
		}
		buf.WriteString("\n")
		if _, err := e.Out.Write(buf.Bytes()); err != nil {
			return err
		}
	} else {
		for _, o := range objs {
			if err := executeTemplate(e.Out, format, o.typed); err != nil {
				// Fall back to the raw document for fields the typed struct lacks.
				var m any
				if jerr := json.Unmarshal(o.raw, &m); jerr != nil {
					return err
				}
				if err2 := executeTemplate(e.Out, format, m); err2 != nil {
					return err
				}
			}
		}
	}
	return joinErrors(errs)
}

func inspectOne(ctx context.Context, e *env, name, typ string, size bool) (inspected, error) {
	var out inspected
	if typ == "volume" {
		return inspectVolume(ctx, e, name)
	}
	if typ == "" || typ == "container" {
		err := e.do(ctx, func(c *client.Client) error {
			info, raw, err := c.ContainerInspectWithRaw(ctx, name, size)
			out = inspected{typed: info, raw: raw}
			return err
		})
		if err == nil {
			return out, nil
		}
		if typ == "container" || !cerrdefs.IsNotFound(err) {
			if typ == "container" && cerrdefs.IsNotFound(err) {
				return out, fmt.Errorf("Error: No such container: %s", name)
			}
			return out, err
		}
	}
	var raw bytes.Buffer
	err := e.do(ctx, func(c *client.Client) error {
		raw.Reset()
		info, err := c.ImageInspect(ctx, name, client.ImageInspectWithRawResponse(&raw))
		out = inspected{typed: info}
		return err
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			if typ == "image" {
				return out, fmt.Errorf("Error: No such image: %s", name)
			}
			if v, verr := inspectVolume(ctx, e, name); verr == nil {
				return v, nil
			}
			return out, fmt.Errorf("Error: No such object: %s", name)
		}
		return out, err
	}
	out.raw = raw.Bytes()
	return out, nil
}

func inspectVolume(ctx context.Context, e *env, name string) (inspected, error) {
	var out inspected
	err := e.do(ctx, func(c *client.Client) error {
		v, raw, err := c.VolumeInspectWithRaw(ctx, name)
		out = inspected{typed: v, raw: raw}
		return err
	})
	if cerrdefs.IsNotFound(err) {
		return out, fmt.Errorf("Error: No such volume: %s", name)
	}
	return out, err
}
