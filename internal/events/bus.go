package events

import (
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
)

// DefaultRingSize is how many recent events the bus keeps for replay; Docker keeps 256.
const DefaultRingSize = 1024

// subscriberBuffer is how far a subscriber may fall behind before it is dropped.
const subscriberBuffer = 1024

// Bus fans events out to subscribers and remembers the most recent ones.
type Bus struct {
	mu   sync.Mutex
	ring []events.Message // oldest first, at most size entries
	size int
	subs map[*subscriber]struct{}
	now  func() time.Time
}

type subscriber struct {
	ch chan events.Message
}

// New returns a bus that keeps the last size events (DefaultRingSize when size <= 0).
func New(size int) *Bus {
	if size <= 0 {
		size = DefaultRingSize
	}
	return &Bus{size: size, subs: map[*subscriber]struct{}{}, now: time.Now}
}

// Publish stamps m with the current time (unless it has one) and the local scope, records it and
// hands it to every subscriber.
func (b *Bus) Publish(m events.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.TimeNano == 0 {
		// Strictly increasing timestamps keep --since/--until replays deterministic when two events land in
		// the same clock tick.
		t := b.now().UnixNano()
		if n := len(b.ring); n > 0 && t <= b.ring[n-1].TimeNano {
			t = b.ring[n-1].TimeNano + 1
		}
		m.TimeNano = t
	}
	m.Time = m.TimeNano / int64(time.Second)
	if m.Scope == "" {
		m.Scope = "local"
	}
	if len(b.ring) == b.size {
		copy(b.ring, b.ring[1:])
		b.ring = b.ring[:b.size-1]
	}
	b.ring = append(b.ring, m)
	for s := range b.subs {
		select {
		case s.ch <- m:
		default:
			delete(b.subs, s)
			close(s.ch)
		}
	}
}

// Log publishes an event of typ about the actor id, in Docker's shape: container events also carry the
// legacy status/id/from fields that old clients print.
func (b *Bus) Log(typ events.Type, action, id string, attrs map[string]string) {
	if attrs == nil {
		attrs = map[string]string{}
	}
	m := events.Message{Type: typ, Action: events.Action(action), Actor: events.Actor{ID: id, Attributes: attrs}}
	if typ == events.ContainerEventType || typ == events.ImageEventType {
		m.Status, m.ID, m.From = action, id, attrs["image"]
	}
	b.Publish(m)
}

// Subscribe returns the events still in the ring and a channel of every later one. The channel is
// closed when cancel is called or when the subscriber fell too far behind.
func (b *Bus) Subscribe() (past []events.Message, live <-chan events.Message, cancel func()) {
	s := &subscriber{ch: make(chan events.Message, subscriberBuffer)}
	b.mu.Lock()
	past = append([]events.Message(nil), b.ring...)
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return past, s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if _, ok := b.subs[s]; ok {
				delete(b.subs, s)
				close(s.ch)
			}
		})
	}
}

// Hook returns the function services call to report events of typ (the container and image services'
// Config.Events).
func (b *Bus) Hook(typ events.Type) func(action, id string, attrs map[string]string) {
	return func(action, id string, attrs map[string]string) { b.Log(typ, action, id, attrs) }
}
