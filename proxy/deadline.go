package proxy

import (
	"sync/atomic"
	"time"
)

// Deadlines are pushed out on every request, and each push of a socket
// deadline moves a runtime timer (about 0.2 µs with the clock read). A
// lazyDeadline skips the push while the deadline armed already falls
// within a small slack after the one asked for: a timeout then fires up
// to deadlineSlack late, never early, and a connection serving many
// requests a second re-arms its deadline about once per slack instead of
// once per request.
type lazyDeadline struct {
	at atomic.Int64 // unix nanoseconds of the armed deadline; 0: none or unknown
}

// deadlineSlack is how late a timeout of d may fire: a sixteenth of it,
// at most a second.
func deadlineSlack(d time.Duration) time.Duration {
	return min(d/16, time.Second)
}

// arm reports the deadline to set for one that must not pass before t,
// given slack, or false when the armed one serves.
func (l *lazyDeadline) arm(t time.Time, slack time.Duration) (time.Time, bool) {
	want := t.UnixNano()
	if a := l.at.Load(); a >= want && a-want <= int64(slack) {
		return time.Time{}, false
	}
	at := want + int64(slack)
	l.at.Store(at)
	return time.Unix(0, at), true
}

// forget records that the deadline was set some other way.
func (l *lazyDeadline) forget() { l.at.Store(0) }
