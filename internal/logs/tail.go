package logs

import (
	"bytes"
	"io"
)

const tailBlock = 32 * 1024

// tailOffset returns where the last n complete lines of r (size bytes) begin, reading backwards one block
// at a time so a small tail of a large log costs a few reads, not the whole file. n < 0 means all lines.
// A final line without its newline is still being written and does not count.
func tailOffset(r io.ReaderAt, size int64, n int) (int64, error) {
	if n < 0 {
		return 0, nil
	}
	// The first newline found from the end terminates the last complete line; the (n+1)th is the one just
	// before the n lines wanted.
	want := n + 1
	buf := make([]byte, tailBlock)
	end := size
	for end > 0 {
		start := max(end-tailBlock, 0)
		b := buf[:end-start]
		if _, err := r.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		for {
			i := bytes.LastIndexByte(b, '\n')
			if i < 0 {
				break
			}
			want--
			if want == 0 {
				return start + int64(i) + 1, nil
			}
			b = b[:i]
		}
		end = start
	}
	return 0, nil
}
