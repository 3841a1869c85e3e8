// tcpbench measures TCP throughput for make bench: `tcpbench server ADDR` accepts connections and
// discards what they send, answering "ok" at EOF; `tcpbench client ADDR MIB` sends MIB mebibytes and
// prints the rate in MB/s, timed until the server has acknowledged everything. It is static and tiny,
// so it can be copied into a busybox container of either engine.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: tcpbench server ADDR | tcpbench client ADDR MIB")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = serve(os.Args[2])
	case "client":
		mib := 1024
		if len(os.Args) > 3 {
			mib, _ = strconv.Atoi(os.Args[3])
		}
		err = send(os.Args[2], mib)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpbench:", err)
		os.Exit(1)
	}
}

func serve(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			if _, err := io.Copy(io.Discard, c); err == nil {
				_, _ = c.Write([]byte("ok"))
			}
		}()
	}
}

func send(addr string, mib int) error {
	var c net.Conn
	var err error
	for i := 0; i < 50; i++ { // the server may still be starting
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	start := time.Now()
	for sent := 0; sent < mib<<20; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			return err
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return err
	}
	ack := make([]byte, 2)
	if _, err := io.ReadFull(c, ack); err != nil {
		return fmt.Errorf("waiting for the server: %w", err)
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("%.0f\n", float64(mib<<20)/secs/1e6)
	return nil
}
