package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"
)

const imagesDefaultFormat = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

func newImagesCommand(e *env) *cobra.Command {
	var all, quiet, noTrunc, digests bool
	var filterFlags []string
	var format string
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				f.Add("reference", args[0])
			}
			var list []image.Summary
			err = e.do(ctx, func(c *client.Client) error {
				var err error
				list, err = c.ImageList(ctx, image.ListOptions{All: all, Filters: f})
				return err
			})
			if err != nil {
				return err
			}
			if quiet && format == "" {
				format = "{{.ID}}"
			}
			def := imagesDefaultFormat
			if digests {
				def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			if format == "" || format == "table" {
				format = def
			}
			now := time.Now()
			var rows []any
			seen := map[string]bool{}
			for i := range list {
				for _, r := range imageRows(&list[i], !noTrunc, now) {
					if quiet {
						// -q lists each image once, however many tags it has.
						if seen[r.img.ID] {
							continue
						}
						seen[r.img.ID] = true
					}
					rows = append(rows, r)
				}
			}
			return renderRows(e.Out, format, def, imageRow{hdr: true}, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fs.BoolVar(&digests, "digests", false, "Show digests")
	fs.StringArrayVarP(&filterFlags, "filter", "f", nil, "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

// imageRows expands one image into docker's rows: one per repository:tag, `<none>` for dangling images.
func imageRows(img *image.Summary, trunc bool, now time.Time) []imageRow {
	tags := map[string][]string{}
	digests := map[string][]string{}
	var repos []string
	addRepo := func(r string) {
		if _, ok := tags[r]; !ok {
			if _, ok := digests[r]; !ok {
				repos = append(repos, r)
			}
		}
	}
	for _, rt := range img.RepoTags {
		if rt == "<none>:<none>" {
			continue
		}
		repo, tag := splitRepoTag(rt)
		addRepo(repo)
		tags[repo] = append(tags[repo], tag)
	}
	for _, rd := range img.RepoDigests {
		if rd == "<none>@<none>" {
			continue
		}
		repo, dgst, ok := strings.Cut(rd, "@")
		if !ok {
			continue
		}
		addRepo(repo)
		digests[repo] = append(digests[repo], dgst)
	}
	base := imageRow{img: img, trunc: trunc, now: now, repo: "<none>", tag: "<none>", digest: "<none>"}
	if len(repos) == 0 {
		return []imageRow{base}
	}
	sort.Strings(repos)
	var rows []imageRow
	for _, repo := range repos {
		r := base
		r.repo = repo
		if d := digests[repo]; len(d) > 0 {
			r.digest = d[0]
		}
		ts := tags[repo]
		if len(ts) == 0 {
			ts = []string{"<none>"}
		}
		for _, t := range ts {
			r.tag = t
			rows = append(rows, r)
		}
	}
	return rows
}

// splitRepoTag splits at the last colon after the last slash, so registry ports stay in the repo.
func splitRepoTag(ref string) (string, string) {
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[:i], ref[i+1:]
	}
	return ref, "<none>"
}

// imageRow is one line of `images`, as templates see it.
type imageRow struct {
	img               *image.Summary
	repo, tag, digest string
	trunc, hdr        bool
	now               time.Time
}

// Repository is the repository name or <none>.
func (r imageRow) Repository() string {
	if r.hdr {
		return "REPOSITORY"
	}
	return r.repo
}

// Tag is the tag or <none>.
func (r imageRow) Tag() string {
	if r.hdr {
		return "TAG"
	}
	return r.tag
}

// Digest is the repository digest or <none>.
func (r imageRow) Digest() string {
	if r.hdr {
		return "DIGEST"
	}
	return r.digest
}

// ID is the image ID, 12 characters unless --no-trunc.
func (r imageRow) ID() string {
	if r.hdr {
		return "IMAGE ID"
	}
	if r.trunc {
		return truncateID(r.img.ID)
	}
	return r.img.ID
}

// CreatedSince is the image's age ("2 weeks ago").
func (r imageRow) CreatedSince() string {
	if r.hdr {
		return "CREATED"
	}
	if r.img.Created == 0 {
		return "N/A"
	}
	return humanSince(time.Unix(r.img.Created, 0), r.now)
}

// CreatedAt is the creation time in Go's default format.
func (r imageRow) CreatedAt() string {
	if r.hdr {
		return "CREATED AT"
	}
	return time.Unix(r.img.Created, 0).String()
}

// Size is the image size, humanised with three significant digits.
func (r imageRow) Size() string {
	if r.hdr {
		return "SIZE"
	}
	return units.HumanSizeWithPrecision(float64(r.img.Size), 3)
}

// Containers is how many containers use the image, when the daemon counted them.
func (r imageRow) Containers() string {
	if r.hdr {
		return "CONTAINERS"
	}
	if r.img.Containers < 0 {
		return "N/A"
	}
	return strconv.FormatInt(r.img.Containers, 10)
}

// VirtualSize is the image size with one more digit of precision (kept for docker compatibility).
func (r imageRow) VirtualSize() string {
	if r.hdr {
		return "VIRTUAL SIZE"
	}
	return units.HumanSize(float64(r.img.Size))
}

// SharedSize is the size shared with other images, when the daemon computed it.
func (r imageRow) SharedSize() string {
	if r.hdr {
		return "SHARED SIZE"
	}
	if r.img.SharedSize < 0 {
		return "N/A"
	}
	return units.HumanSize(float64(r.img.SharedSize))
}

// UniqueSize is the size no other image shares, when the daemon computed it.
func (r imageRow) UniqueSize() string {
	if r.hdr {
		return "UNIQUE SIZE"
	}
	if r.img.SharedSize < 0 {
		return "N/A"
	}
	return units.HumanSize(float64(r.img.Size - r.img.SharedSize))
}

// MarshalJSON gives `{{json .}}` docker's shape: every column as a string field.
func (r imageRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Containers": r.Containers(), "CreatedAt": r.CreatedAt(), "CreatedSince": r.CreatedSince(),
		"Digest": r.Digest(), "ID": r.ID(), "Repository": r.Repository(), "SharedSize": r.SharedSize(),
		"Size": r.Size(), "Tag": r.Tag(), "UniqueSize": r.UniqueSize(), "VirtualSize": r.VirtualSize(),
	})
}

func newTagCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			return e.do(ctx, func(c *client.Client) error { return c.ImageTag(ctx, args[0], args[1]) })
		},
	}
}

func newRmiCommand(e *env) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var errs []string
			for _, name := range args {
				var dels []image.DeleteResponse
				err := e.do(ctx, func(c *client.Client) error {
					var err error
					dels, err = c.ImageRemove(ctx, name, image.RemoveOptions{Force: force, PruneChildren: !noPrune})
					return err
				})
				if err != nil {
					errs = append(errs, err.Error())
					continue
				}
				printDeleted(e.Out, dels, "Untagged: ", "Deleted: ")
			}
			return joinErrors(errs)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

func printDeleted(w io.Writer, dels []image.DeleteResponse, untagged, deleted string) {
	for _, d := range dels {
		if d.Untagged != "" {
			fmt.Fprintf(w, "%s%s\n", untagged, d.Untagged)
		} else if d.Deleted != "" {
			fmt.Fprintf(w, "%s%s\n", deleted, d.Deleted)
		}
	}
}

func newHistoryCommand(e *env) *cobra.Command {
	var human, noTrunc, quiet bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var hist []image.HistoryResponseItem
			err := e.do(ctx, func(c *client.Client) error {
				var err error
				hist, err = c.ImageHistory(ctx, args[0])
				return err
			})
			if err != nil {
				return err
			}
			def := "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
			if quiet && format == "" {
				format = "{{.ID}}"
			}
			now := time.Now()
			rows := make([]any, 0, len(hist))
			for i := range hist {
				rows = append(rows, historyRow{h: &hist[i], trunc: !noTrunc, human: human, now: now})
			}
			return renderRows(e.Out, format, def, historyRow{hdr: true, human: human}, rows)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&format, "format", "", "Format output using a custom template")
	fs.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	return cmd
}

// historyRow is one layer of `history`, as templates see it.
type historyRow struct {
	h                 *image.HistoryResponseItem
	trunc, human, hdr bool
	now               time.Time
}

// ID is the layer's image ID, or <missing> for layers that were not built here.
func (r historyRow) ID() string {
	if r.hdr {
		return "IMAGE"
	}
	if r.trunc && r.h.ID != "<missing>" {
		return truncateID(r.h.ID)
	}
	return r.h.ID
}

// CreatedSince is the age, or RFC 3339 with -H=false.
func (r historyRow) CreatedSince() string {
	if r.hdr && r.human {
		return "CREATED"
	}
	if r.hdr {
		return "CREATED AT"
	}
	t := time.Unix(r.h.Created, 0)
	if !r.human {
		return t.Format(time.RFC3339)
	}
	return humanSince(t, r.now)
}

// CreatedAt is the creation time in RFC 3339.
func (r historyRow) CreatedAt() string {
	if r.hdr {
		return "CREATED AT"
	}
	return time.Unix(r.h.Created, 0).Format(time.RFC3339)
}

// CreatedBy is the command that made the layer, shortened to 45 characters unless --no-trunc.
func (r historyRow) CreatedBy() string {
	if r.hdr {
		return "CREATED BY"
	}
	s := strings.ReplaceAll(r.h.CreatedBy, "\t", " ")
	if r.trunc {
		s = ellipsis(s, 45)
	}
	return s
}

// Size is the layer size, humanised unless -H=false.
func (r historyRow) Size() string {
	if r.hdr {
		return "SIZE"
	}
	if r.human {
		return units.HumanSizeWithPrecision(float64(r.h.Size), 3)
	}
	return strconv.FormatInt(r.h.Size, 10)
}

// Comment is the layer's comment.
func (r historyRow) Comment() string {
	if r.hdr {
		return "COMMENT"
	}
	return r.h.Comment
}

// MarshalJSON gives `{{json .}}` docker's shape.
func (r historyRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Comment": r.Comment(), "CreatedAt": r.CreatedAt(), "CreatedBy": r.CreatedBy(),
		"CreatedSince": r.CreatedSince(), "ID": r.ID(), "Size": r.Size(),
	})
}

func newImagePruneCommand(e *env) *cobra.Command {
	var all, force bool
	var filterFlags []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := parseFilters(filterFlags)
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove all dangling images."
			if all {
				f.Add("dangling", "false")
				warning = "WARNING! This will remove all images without at least one container associated to them."
			} else if !f.Contains("dangling") {
				f.Add("dangling", "true")
			}
			if !force && !confirm(e, warning) {
				return errCancelled
			}
			var rep image.PruneReport
			err = e.do(ctx, func(c *client.Client) error {
				var err error
				rep, err = c.ImagesPrune(ctx, f)
				return err
			})
			if err != nil {
				return err
			}
			if len(rep.ImagesDeleted) > 0 {
				fmt.Fprintln(e.Out, "Deleted Images:")
				printDeleted(e.Out, rep.ImagesDeleted, "untagged: ", "deleted: ")
				fmt.Fprintln(e.Out)
			}
			fmt.Fprintf(e.Out, "Total reclaimed space: %s\n", units.HumanSize(float64(rep.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	cmd.Flags().StringArrayVar(&filterFlags, "filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	return cmd
}

// confirm asks docker's question on stdout and reads the answer from stdin; anything but y/yes (and
// end of input, as when stdin is not a terminal and empty) declines.
func confirm(e *env, warning string) bool {
	fmt.Fprintf(e.Out, "%s\nAre you sure you want to continue? [y/N] ", warning)
	if e.In == nil {
		return false
	}
	line, _ := bufio.NewReader(e.In).ReadString('\n')
	ans := strings.ToLower(strings.TrimSpace(line))
	return ans == "y" || ans == "yes"
}
