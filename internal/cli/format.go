package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"unicode/utf8"
)

// Output formats follow docker's --format: "table" (the default columns), "table TEMPLATE" (columns with
// headers), "json" (one JSON object per line), or any Go template (one rendering per row, no header).

var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSuffix(buf.String(), "\n"), nil
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
	"truncate": truncate,
	"println":  func(a ...any) string { return fmt.Sprintln(a...) },
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// ellipsis shortens s to at most n runes, marking the cut with "…" as docker's tables do.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:n])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// truncateID shortens an ID or digest to docker's 12 hex characters.
func truncateID(id string) string {
	if i := strings.IndexRune(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// parseFormat turns a --format value into a template and whether it is a table. def is the command's
// default table template, used for "" and "table".
func parseFormat(format, def string) (*template.Template, bool, error) {
	table := false
	if format == "" || format == "table" {
		format = def
	}
	switch {
	case format == "json":
		format = "{{json .}}"
	case strings.HasPrefix(format, "table "):
		format, table = strings.TrimPrefix(format, "table "), true
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, false, fmt.Errorf("template parsing error: %w", err)
	}
	return t, table, nil
}

// renderRows writes rows with the format. header is a row whose every field renders as its column title;
// it is only used for tables.
func renderRows(w io.Writer, format, def string, header any, rows []any) error {
	t, table, err := parseFormat(format, def)
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		var buf bytes.Buffer
		if header != nil && t.Execute(&buf, header) == nil {
			out.Write(bytes.TrimRight(buf.Bytes(), "\n"))
			io.WriteString(out, "\n")
		}
	}
	for _, r := range rows {
		var buf bytes.Buffer
		if err := t.Execute(&buf, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		buf.WriteString("\n")
		if _, err := out.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// executeTemplate renders one value with a user template (inspect -f, version/info --format).
func executeTemplate(w io.Writer, format string, v any) error {
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	if format == "json" {
		format = "{{json .}}"
	}
	t, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	buf.WriteString("\n")
	_, err = w.Write(buf.Bytes())
	return err
}
