package container

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/docker/docker/pkg/stdcopy"
)

func TestRawWriterStripsFrames(t *testing.T) {
	var framed bytes.Buffer
	stdcopy.NewStdWriter(&framed, stdcopy.Stdout).Write([]byte("hello "))
	stdcopy.NewStdWriter(&framed, stdcopy.Stdout).Write([]byte("world\r\n"))
	// Written a byte at a time, frames split anywhere still come out whole.
	var out bytes.Buffer
	w := ttyWriter(&out, true)
	for _, b := range framed.Bytes() {
		if _, err := w.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != "hello world\r\n" {
		t.Fatalf("%q", out.String())
	}
	if ttyWriter(&out, false) != io.Writer(&out) {
		t.Fatal("no TTY: not the writer itself")
	}
}

func TestCopyInputDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in, keys, want string
		err            error
	}{
		{"abc\x10\x11def", "", "abc", ErrDetached},
		{"abc\x10x", "", "abc\x10x", nil},
		{"ab\x18q", "ctrl-x,q", "ab", ErrDetached},
		{"ab\x10\x11", "ctrl-x,q", "ab\x10\x11", nil},
	} {
		var out bytes.Buffer
		err := copyInput(&out, strings.NewReader(tc.in), true, tc.keys)
		if !errors.Is(err, tc.err) || (err == nil && tc.err != nil) || out.String() != tc.want {
			t.Errorf("%q keys %q: got %q, %v", tc.in, tc.keys, out.String(), err)
		}
	}
	// Without a TTY the input is binary and passes untouched.
	var out bytes.Buffer
	if err := copyInput(&out, strings.NewReader("\x10\x11"), false, ""); err != nil || out.String() != "\x10\x11" {
		t.Fatalf("%q %v", out.String(), err)
	}
}
