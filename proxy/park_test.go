//go:build linux

package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

func parkingFrontend(t *testing.T, keepAlive time.Duration) (*Frontend, string) {
	be := backendOf(t, BackendOptions{}, cannedBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	return startFrontend(t, FrontendConfig{
		Default:       be,
		ParkIdleAfter: 30 * time.Millisecond,
		Timeouts:      Timeouts{KeepAlive: keepAlive},
	})
}

// parkOne opens a connection to addr, makes one request on it and returns
// once f has parked it.
func parkOne(t *testing.T, f *Frontend, addr string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	c.send(get("a", "/"))
	c.response("GET")
	waitFor(t, 2*time.Second, "connection not parked", func() bool { return f.Stats.Parked.Load() == 1 })
	return c
}

func TestParkedConnectionServesItsNextRequest(t *testing.T) {
	f, addr := parkingFrontend(t, 10*time.Second)
	c := dialRaw(t, addr)
	for i := range 3 {
		c.send(get("a", "/"))
		if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		waitFor(t, 2*time.Second, "connection not parked", func() bool { return f.Stats.Parked.Load() == 1 })
	}
	if n, a := f.Stats.Conns.Load(), f.Stats.Accepted.Load(); n != 1 || a != 1 {
		t.Fatalf("parking shows as connections: %d open, %d accepted; want 1 and 1", n, a)
	}
	// Pipelined requests right after parking.
	c.send(get("a", "/") + get("a", "/"))
	for range 2 {
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("pipelined: %d", resp.StatusCode)
		}
	}
	c.c.Close()
	waitFor(t, 2*time.Second, "closed parked connection still counted", func() bool {
		return f.Stats.Conns.Load() == 0 && f.Stats.Parked.Load() == 0
	})
}

func TestParkedConnectionKeepAliveTimeout(t *testing.T) {
	f, addr := parkingFrontend(t, 300*time.Millisecond)
	c := parkOne(t, f, addr)
	start := time.Now()
	c.expectEOF()
	// The parker closes it at its keep-alive deadline.
	if took := time.Since(start); took > time.Second {
		t.Fatalf("parked connection closed %v after parking, keep-alive timeout 300ms", took)
	}
	waitFor(t, 2*time.Second, "expired connection still counted", func() bool {
		return f.Stats.Conns.Load() == 0 && f.Stats.Parked.Load() == 0
	})
}

// TestExpiredParkedConnectionsCloseWithoutLingering: a parked connection
// whose keep-alive timeout passes, with nothing sent since, is closed
// plainly (the client reads a clean EOF) and at once, without a lingering
// read that waits for a client that never closes.
func TestExpiredParkedConnectionsCloseWithoutLingering(t *testing.T) {
	be := backendOf(t, BackendOptions{}, cannedBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f, addr := startFrontend(t, FrontendConfig{
		Default:       be,
		ParkIdleAfter: 30 * time.Millisecond,
		// Long enough for all twenty to be parked at once on a slow machine.
		Timeouts: Timeouts{KeepAlive: time.Second},
		Linger:   time.Minute,
	})
	var conns []*rawConn
	for i := range 20 {
		conns = append(conns, dialRaw(t, addr))
		conns[i].send(get("a", "/"))
		conns[i].response("GET")
	}
	waitFor(t, 2*time.Second, "connections not parked", func() bool { return f.Stats.Parked.Load() == 20 })
	for _, c := range conns {
		c.expectEOF() // and the clients do not close
	}
	waitFor(t, 2*time.Second, "expired connections still open (lingering?)", func() bool {
		return f.Stats.Conns.Load() == 0 && f.Stats.Parked.Load() == 0
	})
}

func TestShutdownClosesParkedConnections(t *testing.T) {
	be := backendOf(t, BackendOptions{}, cannedBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFrontend(FrontendConfig{Default: be, ParkIdleAfter: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); f.Serve(ln) }()
	c := parkOne(t, f, ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-done
	c.expectEOF()
}

// TestParkedConnectionsHoldNoGoroutine: 300 idle keep-alive connections,
// once parked, hold no goroutine (fasthttp's idle workers exit after
// MaxIdleWorkerDuration) and all still answer.
func TestParkedConnectionsHoldNoGoroutine(t *testing.T) {
	f, addr := parkingFrontend(t, 30*time.Second)
	const n = 300
	before := runtime.NumGoroutine()
	conns := make([]net.Conn, n)
	brs := make([]*bufio.Reader, n)
	roundTrip := func(i int) {
		if _, err := io.WriteString(conns[i], get("a", "/")); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(brs[i], nil)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		conns[i], brs[i] = c, bufio.NewReader(c)
		roundTrip(i)
	}
	waitFor(t, 3*time.Second, "not all connections parked", func() bool { return f.Stats.Parked.Load() == n })
	waitFor(t, 8*time.Second, "parked connections still hold goroutines", func() bool {
		return runtime.NumGoroutine() < before+n/10
	})
	for i := range conns {
		roundTrip(i)
	}
	if got := f.Stats.Conns.Load(); got != n {
		t.Fatalf("%d connections counted, want %d", got, n)
	}
}

// A parked connection that came with a PROXY header keeps the client
// address the header gave when it comes back.
func TestParkedConnectionKeepsProxyHeaderSource(t *testing.T) {
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{Rewrite: Rewrite{ForwardFor: true}}, b.addr())
	f, addr := startFrontend(t, FrontendConfig{Default: be, AcceptProxy: true, ParkIdleAfter: 30 * time.Millisecond})
	c := dialRaw(t, addr)
	c.send("PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\n" + get("a", "/"))
	for i := range 2 {
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		if got := b.lastHeader().Values("X-Forwarded-For"); len(got) != 1 || got[0] != "203.0.113.7" {
			t.Fatalf("request %d: X-Forwarded-For = %q, want the PROXY source", i, got)
		}
		waitFor(t, 2*time.Second, "connection not parked", func() bool { return f.Stats.Parked.Load() == 1 })
		c.send(get("a", "/"))
	}
	if n := f.Stats.Accepted.Load(); n != 1 {
		t.Fatalf("%d connections accepted, want 1", n)
	}
}

// Only the wait for a next request is cut for parking: a request whose
// body comes slowly, after "100 Continue" and after an earlier request,
// is read to its end.
func TestParkingSparesSlowRequestBodies(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		w.Write(data)
	})
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be, ParkIdleAfter: 30 * time.Millisecond})
	c := dialRaw(t, addr)
	c.send(get("a", "/"))
	c.response("GET")
	for _, expect := range []string{"Expect: 100-continue\r\n", ""} {
		c.send("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 70000\r\n" + expect + "\r\n")
		if expect != "" {
			if line, err := c.br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
				t.Fatalf("interim response %q %v", line, err)
			}
			c.br.ReadString('\n')
		}
		for range 7 {
			time.Sleep(100 * time.Millisecond)
			c.send(strings.Repeat("x", 10000))
		}
		if resp, body := c.response("POST"); resp.StatusCode != 200 || len(body) != 70000 {
			t.Fatalf("%q: %d, %d bytes", expect, resp.StatusCode, len(body))
		}
	}
}
