// Package accesslog writes one line per HTTP request and per upgraded
// tunnel, as JSON (the conventions of log/slog's JSON handler) or in
// HAProxy's "option httplog" format.
//
// The request path must not wait for a disk or a pipe, take a lock or
// allocate, so the work is split. Log copies the few fields a line needs
// into a slot of a bounded ring (many producers, one consumer; each slot
// carries an atomic sequence number, so claiming and publishing a slot is
// a compare-and-swap and a store) and returns. One writer goroutine formats
// the lines and writes them in batches through a bufio.Writer. When the ring
// is full the entry is dropped and counted, never waited for; lines a
// failed write loses are counted the same way. Dropped and Written are
// exported for the stats listener and metrics.
//
// The writer looks at the ring every FlushInterval rather than being woken
// for each line: waking a sleeping goroutine costs the waker a few
// microseconds (the runtime may have to wake an idle thread), which would
// land on the request path before its response is written. Only every
// quarter of the ring does a producer wake the writer early, with a send
// that cannot block, so a burst is written before the ring fills.
package accesslog

import (
	"bufio"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"
)

// Format is the layout of a line.
type Format uint8

const (
	// JSON is one object per line: time, level, msg, then the fields of
	// the request (docs/logging.md lists them).
	JSON Format = iota
	// HTTPLog is HAProxy's "option httplog" line, without the syslog
	// header (as HAProxy writes it with "log stdout format raw").
	HTTPLog
)

func (f Format) String() string {
	if f == HTTPLog {
		return "httplog"
	}
	return "json"
}

// ParseFormat reads a format name: "json" or "httplog".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "json":
		return JSON, nil
	case "httplog":
		return HTTPLog, nil
	}
	return 0, fmt.Errorf("unknown access log format %q (want json or httplog)", s)
}

// Options configure a Logger.
type Options struct {
	Format Format
	// Slots is the capacity of the ring, rounded up to a power of two; 0
	// means 4096. A slot takes about 1.4 KiB (mostly the URI), so the
	// default ring takes about 5.5 MiB; it holds that many lines while the
	// output is slow.
	Slots int
	// BufferSize is the size of the write buffer, the largest batch;
	// 0 means 64 KiB, less than 16 KiB means 16 KiB.
	BufferSize int
	// FlushInterval is how long a line may wait in the ring before the
	// writer takes it (lines also go out when a quarter of the ring has
	// filled); 0 means 10 ms.
	FlushInterval time.Duration
	// Location is the time zone of the dates; nil means time.Local.
	Location *time.Location
	// Logf reports write errors (once when writing starts to fail, once
	// when it works again); nil discards them.
	Logf func(format string, args ...any)
}

// closedBit is set in the ring's head once the Logger is closed: a producer
// then fails its compare-and-swap and sees it, and the writer knows the
// last position ever claimed.
const closedBit = 1 << 63

// cacheLine separates fields written by different goroutines.
const cacheLine = 64

// slot is one entry of the ring. seq says whose turn it is: pos when the
// slot is free for the producer claiming position pos, pos+1 once that
// producer has published it, pos+len(slots) once the writer has consumed it.
type slot struct {
	seq atomic.Uint64
	rec Record
}

// Logger writes access log lines. Log may be called from any number of
// goroutines; the lines are written by the Logger's own goroutine until
// Close.
type Logger struct {
	// Read-only after New.
	slots    []slot
	mask     uint64
	wakeMask uint64 // a producer whose position+1 has these bits clear wakes the writer
	interval time.Duration
	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}
	_        [cacheLine]byte

	head atomic.Uint64 // next position to claim, with closedBit
	_    [cacheLine - 8]byte

	dropped   atomic.Uint64
	truncated atomic.Uint64
	written   atomic.Uint64
	_         [cacheLine - 24]byte

	// Owned by the writer goroutine.
	tail    uint64
	w       io.Writer
	bw      *bufio.Writer
	line    []byte
	pending uint64 // lines in bw not yet flushed
	failing bool
	format  Format
	loc     *time.Location
	logf    func(string, ...any)
	err     error // the last flush's error, for Close
}

// New starts a Logger writing to w. The caller keeps ownership of w; it must
// not be closed before the Logger is.
func New(w io.Writer, opts Options) *Logger {
	n := 4096
	if opts.Slots > 0 {
		n = 2
		for n < opts.Slots {
			n <<= 1
		}
	}
	size := opts.BufferSize
	if size == 0 {
		size = 64 << 10
	}
	size = max(size, 16<<10)
	l := &Logger{
		slots:    make([]slot, n),
		mask:     uint64(n - 1),
		wakeMask: uint64(max(n/4, 1) - 1),
		interval: opts.FlushInterval,
		wake:     make(chan struct{}, 1),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		w:        w,
		bw:       bufio.NewWriterSize(w, size),
		line:     make([]byte, 0, 2048),
		format:   opts.Format,
		loc:      opts.Location,
		logf:     opts.Logf,
	}
	for i := range l.slots {
		l.slots[i].seq.Store(uint64(i))
	}
	if l.loc == nil {
		l.loc = time.Local
	}
	if l.interval <= 0 {
		l.interval = 10 * time.Millisecond
	}
	if l.logf == nil {
		l.logf = func(string, ...any) {}
	}
	go l.run()
	return l
}

// Log queues e's line and returns at once: it takes no lock, does not
// allocate and never waits for the writer. When the ring is full, or the
// Logger is closed, the line is dropped and counted.
func (l *Logger) Log(e *Entry) {
	pos := l.head.Load()
	for {
		if pos&closedBit != 0 {
			l.dropped.Add(1)
			return
		}
		s := &l.slots[pos&l.mask]
		switch d := int64(s.seq.Load() - pos); {
		case d == 0: // free for pos
			if !l.head.CompareAndSwap(pos, pos+1) {
				pos = l.head.Load()
				continue
			}
			s.rec.Set(e)
			if s.rec.Truncated {
				l.truncated.Add(1)
			}
			s.seq.Store(pos + 1)
			if (pos+1)&l.wakeMask == 0 {
				select {
				case l.wake <- struct{}{}:
				default: // a wake-up is already pending
				}
			}
			return
		case d < 0: // still holds the line of the previous lap: full
			l.dropped.Add(1)
			return
		default: // another producer took pos
			pos = l.head.Load()
		}
	}
}

// Dropped counts the lines lost: the ring was full, the Logger was closed,
// or writing them failed.
func (l *Logger) Dropped() uint64 { return l.dropped.Load() }

// Written counts the lines written to the output.
func (l *Logger) Written() uint64 { return l.written.Load() }

// Truncated counts the lines whose method or URI was cut (see MaxURI).
func (l *Logger) Truncated() uint64 { return l.truncated.Load() }

// Close writes the lines still queued, stops the writer goroutine and
// returns the error of the last write, if any. It waits for the output: a
// write that never returns blocks it. Lines logged afterwards are dropped.
// Close may be called more than once.
func (l *Logger) Close() error {
	if old := l.head.Or(closedBit); old&closedBit == 0 {
		close(l.quit)
	}
	<-l.done
	return l.err
}

// run is the writer goroutine: it drains the ring, flushes when it is
// empty, and waits for the next tick, a producer's wake-up or Close.
func (l *Logger) run() {
	defer close(l.done)
	tick := time.NewTicker(l.interval)
	defer tick.Stop()
	for {
		l.drain()
		if l.head.Load()&closedBit != 0 {
			l.finish()
			return
		}
		l.flush()
		select {
		case <-tick.C:
		case <-l.wake:
		case <-l.quit:
		}
	}
}

// ready reports whether the next slot has been published.
func (l *Logger) ready() bool {
	return l.slots[l.tail&l.mask].seq.Load() == l.tail+1
}

func (l *Logger) drain() {
	for l.ready() {
		l.consume()
	}
}

// finish writes every line claimed before Close, waiting for producers
// still filling their slot (they never block), and flushes.
func (l *Logger) finish() {
	end := l.head.Load() &^ closedBit
	for l.tail < end {
		for !l.ready() {
			runtime.Gosched()
		}
		l.consume()
	}
	l.flush()
}

// consume formats the line of the next slot and frees the slot.
func (l *Logger) consume() {
	s := &l.slots[l.tail&l.mask]
	if l.format == HTTPLog {
		l.line = appendHTTPLog(l.line[:0], &s.rec.Entry, l.loc)
	} else {
		l.line = appendJSON(l.line[:0], &s.rec.Entry, l.loc)
	}
	s.seq.Store(l.tail + uint64(len(l.slots)))
	l.tail++
	if len(l.line) > l.bw.Available() && l.bw.Buffered() > 0 {
		l.flush()
	}
	// An error stays in bw and is counted by the next flush.
	_, _ = l.bw.Write(l.line)
	l.pending++
}

// flush writes the batch. The lines of a batch that failed are counted as
// dropped (some of their bytes may have been written).
func (l *Logger) flush() {
	if l.pending == 0 {
		return
	}
	l.err = l.bw.Flush()
	if l.err != nil {
		l.dropped.Add(l.pending)
		l.bw.Reset(l.w)
		if !l.failing {
			l.failing = true
			l.logf("access log: %v; lines are dropped until writing succeeds", l.err)
		}
	} else {
		l.written.Add(l.pending)
		if l.failing {
			l.failing = false
			l.logf("access log: writing succeeds again")
		}
	}
	l.pending = 0
}
