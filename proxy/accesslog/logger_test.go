package accesslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is an output tests read while the writer writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.SplitAfter(b.buf.String(), "\n")
	return lines[:len(lines)-1] // after the last newline
}

func entry(uri string) *Entry {
	e := goldenEntries()[0]
	e.URI = []byte(uri)
	return &e
}

// TestLogWritesEveryLine logs from several goroutines at once, into a ring
// big enough for all: every line arrives exactly once, whole.
func TestLogWritesEveryLine(t *testing.T) {
	const producers, each = 4, 500
	var out syncBuffer
	l := New(&out, Options{Slots: producers * each, Location: time.UTC})
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var e Entry = *entry("")
			uri := make([]byte, 0, 32)
			for i := range each {
				uri = fmt.Appendf(uri[:0], "/p%d/%d", p, i)
				e.URI = uri // reused at once: Log must have copied it
				l.Log(&e)
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := out.lines()
	if len(lines) != producers*each || l.Written() != producers*each || l.Dropped() != 0 {
		t.Fatalf("%d lines, Written %d, Dropped %d; want %d, %d, 0",
			len(lines), l.Written(), l.Dropped(), producers*each, producers*each)
	}
	seen := map[string]bool{}
	for _, line := range lines {
		seen[decodeLine(t, []byte(line)).URI] = true
	}
	for p := range producers {
		for i := range each {
			if uri := fmt.Sprintf("/p%d/%d", p, i); !seen[uri] {
				t.Fatalf("line for %s missing", uri)
			}
		}
	}
}

func TestHTTPLogOutput(t *testing.T) {
	var out syncBuffer
	l := New(&out, Options{Format: HTTPLog, Location: time.UTC})
	l.Log(entry("/x"))
	l.Close()
	want := "10.0.1.2:33317 [01/Mar/2026:10:04:05.123] http-in customer-backend/agentip_10.0.1.128_10006 " +
		"0/0/30/69/109 200 2750 - - ---- 0/7/0/2/0 0/0 \"GET /x HTTP/1.1\"\n"
	if got := out.lines(); len(got) != 1 || got[0] != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// blockingWriter blocks every Write until released, telling when one
// starts.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	out     syncBuffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.release
	return w.out.Write(p)
}

// TestDropsWhileWriterBlocks: with the writer stuck in a write, Log still
// returns at once; the ring takes what it holds and the rest is dropped
// and counted. Nothing is lost uncounted.
func TestDropsWhileWriterBlocks(t *testing.T) {
	w := &blockingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	l := New(w, Options{Slots: 8})
	l.Log(entry("/first"))
	select {
	case <-w.entered: // the writer took /first out of the ring and is stuck
	case <-time.After(5 * time.Second):
		t.Fatal("writer never wrote")
	}
	begin := time.Now()
	for i := range 100 {
		l.Log(entry(fmt.Sprintf("/%d", i)))
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("100 Log calls took %v while the writer was blocked", d)
	}
	if got := l.Dropped(); got != 92 {
		t.Errorf("Dropped = %d, want 92 (100 logged, 8 slots)", got)
	}
	close(w.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := w.out.lines()
	if l.Written() != 9 || len(lines) != 9 {
		t.Fatalf("Written %d, %d lines; want 9", l.Written(), len(lines))
	}
	for i, want := range []string{"/first", "/0", "/7"} {
		idx := []int{0, 1, 8}[i]
		if got := decodeLine(t, []byte(lines[idx])).URI; got != want {
			t.Errorf("line %d: uri %q, want %q", idx, got, want)
		}
	}
}

// failingWriter fails while fail is set.
type failingWriter struct {
	mu   sync.Mutex
	fail bool
	out  bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return 0, errors.New("disk full")
	}
	return w.out.Write(p)
}

func (w *failingWriter) setFail(v bool) {
	w.mu.Lock()
	w.fail = v
	w.mu.Unlock()
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriteErrorsAreCounted: lines a failed write loses count as dropped,
// the error is reported once, and writing resumes when the output heals.
func TestWriteErrorsAreCounted(t *testing.T) {
	w := &failingWriter{fail: true}
	var mu sync.Mutex
	var reports []string
	l := New(w, Options{Logf: func(format string, args ...any) {
		mu.Lock()
		reports = append(reports, fmt.Sprintf(format, args...))
		mu.Unlock()
	}})
	for i := uint64(1); i <= 2; i++ {
		l.Log(entry("/lost"))
		waitFor(t, "the failed line to be counted", func() bool { return l.Dropped() == i })
	}
	w.setFail(false)
	l.Log(entry("/kept"))
	waitFor(t, "the line to be written", func() bool { return l.Written() == 1 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) != 2 || !strings.Contains(reports[0], "disk full") || !strings.Contains(reports[1], "succeeds again") {
		t.Errorf("reports %q, want one failure and one recovery", reports)
	}
	if got := w.out.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, `"uri":"/kept"`) {
		t.Errorf("output %q, want only the /kept line", got)
	}
}

func TestTruncatesLongURIs(t *testing.T) {
	var out syncBuffer
	l := New(&out, Options{})
	l.Log(entry("/" + strings.Repeat("a", 3000)))
	l.Log(entry("/" + strings.Repeat("b", MaxURI-1)))
	l.Close()
	if l.Truncated() != 1 {
		t.Errorf("Truncated = %d, want 1", l.Truncated())
	}
	lines := out.lines()
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	first, second := decodeLine(t, []byte(lines[0])), decodeLine(t, []byte(lines[1]))
	if len(first.URI) != MaxURI || !first.URITruncated {
		t.Errorf("long URI logged with %d bytes, truncated=%v", len(first.URI), first.URITruncated)
	}
	if len(second.URI) != MaxURI || second.URITruncated {
		t.Errorf("URI of exactly MaxURI bytes logged with %d bytes, truncated=%v", len(second.URI), second.URITruncated)
	}
}

// TestCloseStopsWriter: Close writes what is queued, ends the writer
// goroutine, and later lines are dropped, not written.
func TestCloseStopsWriter(t *testing.T) {
	before := runtime.NumGoroutine()
	var out syncBuffer
	l := New(&out, Options{})
	for range 10 {
		l.Log(entry("/"))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.done:
	default:
		t.Fatal("writer goroutine still running after Close")
	}
	if l.Written() != 10 || len(out.lines()) != 10 {
		t.Errorf("Written %d, want 10", l.Written())
	}
	l.Log(entry("/late"))
	if l.Dropped() != 1 || l.Written() != 10 {
		t.Errorf("after Close: Dropped %d, Written %d; want 1, 10", l.Dropped(), l.Written())
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	waitFor(t, "goroutines to return to their number before New", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// TestCloseWhileLogging: Close racing with producers loses nothing
// uncounted: every Log call ends as written or dropped.
func TestCloseWhileLogging(t *testing.T) {
	l := New(io.Discard, Options{Slots: 64})
	var wg sync.WaitGroup
	const producers, each = 4, 2000
	for range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				l.Log(entry("/"))
			}
		}()
	}
	time.Sleep(time.Millisecond)
	l.Close()
	wg.Wait()
	if got := l.Written() + l.Dropped(); got != producers*each {
		t.Errorf("Written %d + Dropped %d = %d, want %d", l.Written(), l.Dropped(), got, producers*each)
	}
}

// TestLogDoesNotAllocate covers the producer and the writer goroutine:
// AllocsPerRun counts the allocations of the whole process.
func TestLogDoesNotAllocate(t *testing.T) {
	for _, f := range []Format{JSON, HTTPLog} {
		l := New(io.Discard, Options{Format: f})
		e := entry("/" + strings.Repeat("long/path/", 100))
		for range 100 {
			l.Log(e)
		}
		if n := testing.AllocsPerRun(1000, func() { l.Log(e) }); n != 0 {
			t.Errorf("%v: %v allocations per Log", f, n)
		}
		l.Close()
		if l.Written()+l.Dropped() != 1100+1 { // AllocsPerRun runs once more to warm up
			t.Errorf("%v: Written %d + Dropped %d, want 1101", f, l.Written(), l.Dropped())
		}
	}
}

// gatedWriter blocks writes while its gate is held, so that a benchmark
// can keep the writer goroutine off the CPU and off the ring's cache lines
// while it measures the producers.
type gatedWriter struct{ gate sync.Mutex }

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.gate.Lock()
	defer g.gate.Unlock()
	return len(p), nil
}

// benchmarkProducer runs logOne b.N times with the writer held back (it
// formats at most a buffer's worth of lines, then waits), in batches of
// half the ring; between batches, off the clock, the writer catches up. So
// it measures the request path alone, and nothing is dropped.
func benchmarkProducer(b *testing.B, l *Logger, g *gatedWriter, logOne func()) {
	const batch = 4096 // half of Slots below
	g.gate.Lock()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == batch-1 {
			b.StopTimer()
			g.gate.Unlock()
			for l.Written() < uint64(i) {
				time.Sleep(20 * time.Microsecond)
			}
			g.gate.Lock()
			b.StartTimer()
		}
		logOne()
	}
	b.StopTimer()
	g.gate.Unlock()
	l.Close()
	if l.Dropped() != 0 {
		b.Fatalf("%d dropped", l.Dropped())
	}
}

// BenchmarkLog is the cost of Log to the request path, with room in the
// ring.
func BenchmarkLog(b *testing.B) {
	g := &gatedWriter{}
	l := New(g, Options{Slots: 8192})
	e := entry("/index.html")
	benchmarkProducer(b, l, g, func() { l.Log(e) })
}

// BenchmarkLogFull measures Log on a full ring: the drop path.
func BenchmarkLogFull(b *testing.B) {
	w := &blockingWriter{entered: make(chan struct{}, 1), release: make(chan struct{})}
	l := New(w, Options{Slots: 8})
	e := entry("/index.html")
	for range 9 {
		l.Log(e)
	}
	<-w.entered
	b.ReportAllocs()
	for b.Loop() {
		l.Log(e)
	}
	b.StopTimer()
	close(w.release)
	l.Close()
}
