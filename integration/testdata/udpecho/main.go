// udpecho answers every UDP datagram on :7000 with "echo:" and the datagram. Busybox has no UDP
// server, so the published-UDP-port test copies this into its container.
package main

import (
	"log"
	"net"
)

func main() {
	pc, err := net.ListenPacket("udp4", ":7000")
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 2048)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		_, _ = pc.WriteTo(append([]byte("echo:"), buf[:n]...), addr)
	}
}
