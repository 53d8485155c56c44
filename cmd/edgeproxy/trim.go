package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// quietPerSecond is the activity (requests answered, connections
// accepted and closed) per second at or below which the instance counts
// as quiet: a load balancer's health checks and a trickle of traffic.
const quietPerSecond = 100

// memoryTrimmer gives back to the system the memory a busy spell left
// behind, once the instance goes quiet. The buffer pools keep what the
// busiest moment needed, and Go returns freed memory only after
// collections that a proxy which allocates nothing per request rarely
// makes (docs/architecture.md, "Memory after a busy spell"). The first
// interval of `every` that is quiet after a busy one drops the pools and
// returns free memory (one forced collection); a quiet instance is not
// trimmed again until it has been busy again. An interval that ends with
// requests in flight (a few large bodies streaming) is not quiet.
type memoryTrimmer struct {
	every    time.Duration
	activity func() uint64 // requests answered, connections accepted and closed, so far
	inFlight func() int64  // requests at the servers now
	trim     func()
	last     uint64
	busy     bool // since the last trim; start-up counts as busy
}

func newMemoryTrimmer(every time.Duration, activity func() uint64, inFlight func() int64, trim func()) *memoryTrimmer {
	return &memoryTrimmer{every: every, activity: activity, inFlight: inFlight, trim: trim, last: activity(), busy: true}
}

// tick looks at the activity of the interval that just ended, trims if it
// was quiet after a busy one, and reports whether it trimmed.
func (t *memoryTrimmer) tick() bool {
	n := t.activity()
	d := n - t.last
	t.last = n
	if float64(d) > quietPerSecond*t.every.Seconds() || t.inFlight() > 0 {
		t.busy = true
		return false
	}
	if !t.busy {
		return false
	}
	t.busy = false
	t.trim()
	return true
}

func (t *memoryTrimmer) run(ctx context.Context) {
	tk := time.NewTicker(t.every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			t.tick()
		}
	}
}

// trimMemory drops the proxy's buffer pools and returns free memory to
// the system, and logs what that gave back.
func trimMemory(log *slog.Logger) func() {
	return func() {
		start := time.Now()
		before := releasedBytes()
		n := proxy.TrimPools()
		debug.FreeOSMemory()
		log.Info("memory trimmed after a busy spell",
			"pool_buffers", n,
			"released_mib", float64(releasedBytes()-before)/(1<<20),
			"took", time.Since(start).String())
	}
}

// releasedBytes is the heap memory returned to the system so far.
func releasedBytes() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}
