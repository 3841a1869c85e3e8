package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/pkg/stdcopy"
)

var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// writeLog writes lines "out0".."outN-1" on stdout, and "err<i>" on stderr for every third i, one second
// apart starting at base.
func writeLog(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	w, err := NewWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ts := base.Add(time.Duration(i) * time.Second)
		stream, prefix := "stdout", "out"
		if i%3 == 0 {
			stream, prefix = "stderr", "err"
		}
		if err := w.Write(stream, fmt.Appendf(nil, "%s%d\n", prefix, i), ts); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is a bytes.Buffer safe to read while Read writes into it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func demux(t *testing.T, framed []byte) (stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, bytes.NewReader(framed)); err != nil {
		t.Fatalf("not valid stdcopy framing: %v", err)
	}
	return o.String(), e.String()
}

func TestReadOptions(t *testing.T) {
	path := writeLog(t, 10) // err0 out1 out2 err3 out4 out5 err6 out7 out8 err9
	ts := func(i int) string { return base.Add(time.Duration(i)*time.Second).Format(TimestampFormat) + " " }
	cases := []struct {
		name      string
		o         ReadOptions
		out, errs string
	}{
		{"all", ReadOptions{Stdout: true, Stderr: true, Tail: -1},
			"out1\nout2\nout4\nout5\nout7\nout8\n", "err0\nerr3\nerr6\nerr9\n"},
		{"stdout only", ReadOptions{Stdout: true, Tail: -1}, "out1\nout2\nout4\nout5\nout7\nout8\n", ""},
		{"stderr only", ReadOptions{Stderr: true, Tail: -1}, "", "err0\nerr3\nerr6\nerr9\n"},
		{"tail 3", ReadOptions{Stdout: true, Stderr: true, Tail: 3}, "out7\nout8\n", "err9\n"},
		{"tail 0", ReadOptions{Stdout: true, Stderr: true, Tail: 0}, "", ""},
		{"tail more than lines", ReadOptions{Stdout: true, Stderr: true, Tail: 100},
			"out1\nout2\nout4\nout5\nout7\nout8\n", "err0\nerr3\nerr6\nerr9\n"},
		{"tail counts both streams", ReadOptions{Stdout: true, Tail: 2}, "out8\n", ""},
		{"since", ReadOptions{Stdout: true, Stderr: true, Tail: -1, Since: base.Add(7 * time.Second)}, "out7\nout8\n", "err9\n"},
		{"until", ReadOptions{Stdout: true, Stderr: true, Tail: -1, Until: base.Add(2 * time.Second)}, "out1\nout2\n", "err0\n"},
		{"since and until", ReadOptions{Stdout: true, Stderr: true, Tail: -1, Since: base.Add(3 * time.Second), Until: base.Add(4 * time.Second)}, "out4\n", "err3\n"},
		{"timestamps", ReadOptions{Stdout: true, Tail: 1, Timestamps: true}, "", ""},
		{"timestamps stdout", ReadOptions{Stdout: true, Stderr: true, Tail: 2, Timestamps: true}, ts(8) + "out8\n", ts(9) + "err9\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Read(context.Background(), path, tc.o, &buf, nil); err != nil {
				t.Fatal(err)
			}
			out, errs := demux(t, buf.Bytes())
			if out != tc.out || errs != tc.errs {
				t.Fatalf("stdout %q stderr %q, want %q %q", out, errs, tc.out, tc.errs)
			}
		})
	}
}

func TestReadFramePerEntry(t *testing.T) {
	path := writeLog(t, 2)
	var buf bytes.Buffer
	if err := Read(context.Background(), path, ReadOptions{Stdout: true, Stderr: true, Tail: -1}, &buf, nil); err != nil {
		t.Fatal(err)
	}
	want := []byte{2, 0, 0, 0, 0, 0, 0, 5, 'e', 'r', 'r', '0', '\n', 1, 0, 0, 0, 0, 0, 0, 5, 'o', 'u', 't', '1', '\n'}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("got %v\nwant %v", buf.Bytes(), want)
	}
}

func TestReadMissingLog(t *testing.T) {
	var buf bytes.Buffer
	if err := Read(context.Background(), filepath.Join(t.TempDir(), "none"), ReadOptions{Stdout: true, Tail: -1}, &buf, nil); err != nil || buf.Len() != 0 {
		t.Fatalf("err %v, %d bytes", err, buf.Len())
	}
}

// countingReaderAt records how many bytes tailOffset reads.
type countingReaderAt struct {
	r io.ReaderAt
	n int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.n += int64(len(p))
	return c.r.ReadAt(p, off)
}

func TestTailReadsBackwardsOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	w, err := NewWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("y", 100) + "\n")
	for i := 0; i < 50000; i++ { // ~7 MB
		if err := w.Write("stdout", line, base); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write("stdout", []byte("last\n"), base); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	c := &countingReaderAt{r: f}
	off, err := tailOffset(c, fi.Size(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if c.n > 2*tailBlock {
		t.Fatalf("tail 5 of %d bytes read %d bytes", fi.Size(), c.n)
	}
	var buf bytes.Buffer
	if err := Read(context.Background(), path, ReadOptions{Stdout: true, Tail: 2}, &buf, nil); err != nil {
		t.Fatal(err)
	}
	if out, _ := demux(t, buf.Bytes()); out != string(line)+"last\n" {
		t.Fatalf("tail 2: %q (offset %d)", out, off)
	}
}

func TestTailOffsetEdges(t *testing.T) {
	cases := []struct {
		data string
		n    int
		want int64
	}{
		{"", 3, 0},
		{"a\nb\nc\n", 0, 6},
		{"a\nb\nc\n", 1, 4},
		{"a\nb\nc\n", 3, 0},
		{"a\nb\nc\n", -1, 0},
		{"a\nb\npart", 1, 2}, // unfinished last line is not counted
		{"a\nb\npart", 0, 4},
	}
	for _, tc := range cases {
		got, err := tailOffset(strings.NewReader(tc.data), int64(len(tc.data)), tc.n)
		if err != nil || got != tc.want {
			t.Errorf("%q tail %d: got %d, %v; want %d", tc.data, tc.n, got, err, tc.want)
		}
	}
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := NewWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	w.Write("stdout", []byte("before\n"), time.Now())

	stopped := make(chan struct{})
	var buf syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), path, ReadOptions{Stdout: true, Stderr: true, Tail: -1, Follow: true}, &buf, stopped)
	}()
	waitFor(t, &buf, "before\n", "")
	w.Write("stderr", []byte("after\n"), time.Now())
	waitFor(t, &buf, "before\n", "after\n")
	w.Write("stdout", []byte("last\n"), time.Now())
	close(stopped) // the drained file must still be sent in full
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after stopped")
	}
	if out, errs := demux(t, buf.Bytes()); out != "before\nlast\n" || errs != "after\n" {
		t.Fatalf("got %q %q", out, errs)
	}
}

func TestFollowCancelAndLateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var buf syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Read(ctx, path, ReadOptions{Stdout: true, Tail: 0, Follow: true}, &buf, nil)
	}()
	time.Sleep(150 * time.Millisecond)
	w, err := NewWriter(path) // the container starts after `logs -f` was asked
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	w.Write("stdout", []byte("hi\n"), time.Now())
	waitFor(t, &buf, "hi\n", "")
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end on cancel")
	}
}

func TestFollowPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	stopped := make(chan struct{})
	var buf syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Read(context.Background(), path, ReadOptions{Stdout: true, Tail: -1, Follow: true}, &buf, stopped)
	}()
	// A reader that looks while an entry is half written must wait for the rest, not drop or mangle it.
	f.WriteString(`{"log":"split\n","str`)
	time.Sleep(200 * time.Millisecond)
	f.WriteString(`eam":"stdout","time":"2026-01-02T03:04:05Z"}` + "\n")
	waitFor(t, &buf, "split\n", "")
	close(stopped)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, buf *syncBuffer, out, errs string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		o, e := demux(t, buf.Bytes())
		if o == out && e == errs {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %q %q, want %q %q", o, e, out, errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
