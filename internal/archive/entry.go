package archive

import (
	"archive/tar"
	"bufio"
	"io"
	"io/fs"
	"os"
	"time"
)

// WriteEntry adds the file at src to tw as name: its header (PAX, no user or group names, mtime to the
// second, no atime or ctime, so equal trees give equal archives) and, for a regular file, its content.
// Sockets are never archived; devices and fifos only with special.
func WriteEntry(tw *tar.Writer, src, name string, special bool) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	mode := fi.Mode()
	if mode&fs.ModeSocket != 0 || (!special && mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0) {
		return nil
	}
	link := ""
	if mode&fs.ModeSymlink != 0 {
		if link, err = os.Readlink(src); err != nil {
			return err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = name
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uname, hdr.Gname, hdr.Format = "", "", tar.FormatPAX
	hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = fi.ModTime().Truncate(time.Second), time.Time{}, time.Time{}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !mode.IsRegular() {
		return nil
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, bufio.NewReader(io.LimitReader(f, hdr.Size)))
	return err
}
