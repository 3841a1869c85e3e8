// Package events is berthd's event bus: services publish what happened to containers and images, and
// GET /events subscribers receive it, filtered, as Docker's events.Message.
//
// Guarantees: the bus keeps a bounded ring of the most recent events so that `--since` can replay the
// past; a subscription takes the ring's snapshot and attaches to the live feed in one step under the
// bus lock, so a subscriber sees every event exactly once and in order. Publishing never blocks on a
// subscriber: one that falls more than its buffer behind is dropped (its channel is closed), which
// ends its stream instead of silently skipping events. Nothing is persisted: the history starts empty
// when berthd starts, as Docker's does.
package events
