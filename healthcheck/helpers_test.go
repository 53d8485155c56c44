package healthcheck

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backendMode says how a test backend treats a connection.
type backendMode int32

const (
	modeClose  backendMode = iota // accept and close: enough for TCP checks
	modeHTTP                      // read one request, answer with status
	modeSilent                    // accept and never answer
	modeRaw                       // read one request, write raw bytes, close
)

// backend is a loopback test server that can be closed and reopened on
// the same port.
type backend struct {
	t      *testing.T
	addr   string
	mode   atomic.Int32
	status atomic.Int32
	raw    atomic.Value // string, for modeRaw

	accepts atomic.Int64
	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	lastReq *http.Request
	wg      sync.WaitGroup
}

func newBackend(t *testing.T, mode backendMode) *backend {
	t.Helper()
	b := &backend{t: t, conns: make(map[net.Conn]struct{})}
	b.mode.Store(int32(mode))
	b.status.Store(200)
	b.raw.Store("")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	b.serve(ln)
	t.Cleanup(b.close)
	return b
}

func (b *backend) serve(ln net.Listener) {
	b.mu.Lock()
	b.ln = ln
	b.mu.Unlock()
	b.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.accepts.Add(1)
			b.mu.Lock()
			b.conns[c] = struct{}{}
			b.mu.Unlock()
			b.wg.Go(func() { b.handle(c) })
		}
	})
}

func (b *backend) handle(c net.Conn) {
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}()
	switch backendMode(b.mode.Load()) {
	case modeClose:
		return
	case modeSilent:
		_, _ = io.Copy(io.Discard, c) // until the client or down() ends it
		return
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	b.mu.Lock()
	b.lastReq = req
	b.mu.Unlock()
	if backendMode(b.mode.Load()) == modeRaw {
		_, _ = c.Write([]byte(b.raw.Load().(string)))
		return
	}
	code := int(b.status.Load())
	_, _ = c.Write([]byte("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}

// down closes the listener and every open connection; checks now fail
// with "connection refused".
func (b *backend) down() {
	b.mu.Lock()
	if b.ln != nil {
		b.ln.Close()
		b.ln = nil
	}
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
}

// up listens again on the same port.
func (b *backend) up() {
	b.t.Helper()
	var err error
	for range 100 { // the port may take a moment to be free again
		var ln net.Listener
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			b.serve(ln)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.t.Fatalf("relisten on %s: %v", b.addr, err)
}

func (b *backend) close() {
	b.down()
	b.wg.Wait()
}

func (b *backend) request() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastReq
}

// waitFor polls cond until it holds or limit passes.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// transitions records OnChange calls.
type transitions struct {
	mu   sync.Mutex
	seen []string
	snap []TargetStatus
}

func (r *transitions) onChange(t *Target, from, to State) {
	s := t.Snapshot()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, from.String()+">"+to.String())
	r.snap = append(r.snap, s)
}

func (r *transitions) list() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.seen, " ")
}

func (r *transitions) at(i int) TargetStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snap[i]
}

func (r *transitions) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// fakeClock is an injectable clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// tcpConfig is a fast TCP check for tests.
func tcpConfig() Config {
	return Config{Enabled: true, Inter: 20 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 3}
}

func newChecker(t *testing.T, opts Options) *Checker {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	c := NewChecker(opts)
	t.Cleanup(c.Close)
	return c
}

func mustAdd(t *testing.T, c *Checker, addr string, cfg Config) *Target {
	t.Helper()
	tg, err := c.Add(addr, cfg)
	if err != nil {
		t.Fatalf("Add(%q): %v", addr, err)
	}
	return tg
}
