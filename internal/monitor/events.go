package monitor

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"time"
)

// subscriber is one "events" connection. Exits are queued without blocking; a subscriber that falls this
// far behind is disconnected and catches up with "list", which is what a reconnecting daemon does anyway.
type subscriber struct {
	conn net.Conn
	ch   chan Exit
}

const subscriberQueue = 256

func (s *Server) serveEvents(conn *net.UnixConn, br *bufio.Reader) {
	sub := &subscriber{conn: conn, ch: make(chan Exit, subscriberQueue)}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	// Exits published from here on are queued in sub.ch; the "{}" line tells the client so.
	if err := writeLine(conn, response{}); err != nil {
		s.unsubscribe(sub)
		return
	}
	go func() {
		enc := json.NewEncoder(conn)
		for e := range sub.ch {
			conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if err := enc.Encode(e); err != nil {
				s.unsubscribe(sub)
				return
			}
		}
	}()
	io.Copy(io.Discard, br) // until the subscriber goes away
	s.unsubscribe(sub)
}

func (s *Server) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	if _, ok := s.subs[sub]; ok {
		delete(s.subs, sub)
		close(sub.ch)
	}
	s.mu.Unlock()
	sub.conn.Close()
}

func (s *Server) publish(e Exit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		select {
		case sub.ch <- e:
		default:
			delete(s.subs, sub)
			close(sub.ch)
			go sub.conn.Close()
		}
	}
}
