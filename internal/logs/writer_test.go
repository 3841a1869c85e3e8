package logs

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readEntries(t *testing.T, path string) []entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriterFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 123456789, time.FixedZone("x", 3600))
	if err := w.Write("stdout", []byte("hello\n"), t0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"log":"hello\n","stream":"stdout","time":"2026-11-23T08:00:00.123456789Z"}` + "\n"
	if string(b) != want {
		t.Fatalf("got %q\nwant %q", b, want)
	}
}

func TestWriterLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := NewWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	long := strings.Repeat("x", MaxLineSize*2+10) + "\n"
	writes := []struct{ stream, data string }{
		{"stdout", "a\nb"},        // one line, one partial
		{"stderr", "err1\n"},      // other stream is independent
		{"stdout", "c\nd\n"},      // completes "bc", adds "d"
		{"stdout", "q\"<\t\x01é"}, // escaping, left open until Close
		{"stderr", long},
		{"stderr", "\xff\n"}, // invalid UTF-8
	}
	for _, wr := range writes {
		if err := w.Write(wr.stream, []byte(wr.data), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("stdout", []byte("late\n"), now); err == nil {
		t.Fatal("write after close succeeded")
	}
	got := readEntries(t, path)
	want := []entry{
		{Log: "a\n", Stream: "stdout"},
		{Log: "err1\n", Stream: "stderr"},
		{Log: "bc\n", Stream: "stdout"},
		{Log: "d\n", Stream: "stdout"},
		{Log: strings.Repeat("x", MaxLineSize), Stream: "stderr"},
		{Log: strings.Repeat("x", MaxLineSize), Stream: "stderr"},
		{Log: "xxxxxxxxxx\n", Stream: "stderr"},
		{Log: "\ufffd\n", Stream: "stderr"},
		{Log: "q\"<\t\x01é", Stream: "stdout"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Log != want[i].Log || got[i].Stream != want[i].Stream {
			t.Errorf("entry %d: got %q/%s, want %q/%s", i, got[i].Log, got[i].Stream, want[i].Log, want[i].Stream)
		}
		if !got[i].Time.Equal(now) {
			t.Errorf("entry %d: time %v, want %v", i, got[i].Time, now)
		}
	}
}

func TestWriterAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	for _, s := range []string{"run1\n", "run2\n"} {
		w, err := NewWriter(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write("stdout", []byte(s), time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := readEntries(t, path); len(got) != 2 || got[0].Log != "run1\n" || got[1].Log != "run2\n" {
		t.Fatalf("restart did not append: %+v", got)
	}
}

func TestJSONEscapingMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "\x00\x1f\x7f", "<a&b>", "\u2028\u2029", "\xc3", "日本\n", "\\\"/"} {
		got := appendJSONString(nil, []byte(s))
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Errorf("%q: got %s want %s", s, got, want)
		}
	}
}
