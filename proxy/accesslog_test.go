package proxy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy/accesslog"
)

// logOutput is an access log output tests read while the writer writes.
type logOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *logOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *logOutput) lines() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	l := strings.SplitAfter(o.buf.String(), "\n")
	return l[:len(l)-1]
}

// newAccessLog starts a Logger into a logOutput, closed when the test ends
// (after the frontends started later have shut down).
func newAccessLog(t *testing.T, format accesslog.Format) (*accesslog.Logger, *logOutput) {
	t.Helper()
	out := &logOutput{}
	l := accesslog.New(out, accesslog.Options{Format: format, Location: time.UTC})
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing the access log: %v", err)
		}
	})
	return l, out
}

// nextLine waits up to 5 s for line n (from 0) and decodes it.
func nextLine(t *testing.T, out *logOutput, n int) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if lines := out.lines(); len(lines) > n {
			var m map[string]any
			if err := json.Unmarshal([]byte(lines[n]), &m); err != nil {
				t.Fatalf("line %d %q: %v", n, lines[n], err)
			}
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line %d; have %q", n, out.lines())
		}
	}
}

// expectFields checks the fields of a decoded line; numbers are float64.
func expectFields(t *testing.T, line map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if got, ok := line[k]; !ok || got != v {
			t.Errorf("%s = %#v, want %#v (line %v)", k, got, v, line)
		}
	}
}

func ms(line map[string]any, key string) float64 {
	v, _ := line[key].(float64)
	return v
}

// TestAccessLogLines sends requests of every kind through a real frontend
// on loopback and checks the line each one gets.
func TestAccessLogLines(t *testing.T) {
	alog, out := newAccessLog(t, accesslog.JSON)
	big := strings.Repeat("x", 64<<10)
	ok := startBackend(t, "ok", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "hello\n")
	})
	okBe := backendOf(t, BackendOptions{}, ok.addr())
	okBe.Name = "ok-be"
	empty := backendOf(t, BackendOptions{})
	empty.Name = "empty-be"
	closing := acceptAndClose(t)
	closingBe := backendOf(t, BackendOptions{}, closing)
	closingBe.Name = "closing-be"
	hung := startBackend(t, "hung", func(w http.ResponseWriter, r *http.Request) { time.Sleep(time.Second) })
	hungBe := backendOf(t, BackendOptions{Timeouts: Timeouts{Server: 100 * time.Millisecond}}, hung.addr())
	hungBe.Name = "hung-be"
	_, addr := startFrontend(t, FrontendConfig{Name: "fe", AccessLog: alog, Routes: []Route{
		{Backend: okBe, HostEq: "ok"},
		{Backend: empty, HostEq: "empty"},
		{Backend: closingBe, HostEq: "closing"},
		{Backend: hungBe, HostEq: "hung"},
	}})

	c := dialRaw(t, addr)
	clientPort := float64(c.c.LocalAddr().(*net.TCPAddr).Port)
	n := 0
	check := func(name string, want map[string]any) map[string]any {
		t.Helper()
		line := nextLine(t, out, n)
		n++
		t.Run(name, func(t *testing.T) { expectFields(t, line, want) })
		return line
	}

	c.send("GET /a?b=c HTTP/1.1\r\nHost: ok\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "hello\n" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	line := check("200", map[string]any{
		"msg": "request", "level": "INFO", "frontend": "fe", "backend": "ok-be", "server": "s0",
		"client_ip": "127.0.0.1", "client_port": clientPort, "method": "GET", "uri": "/a?b=c",
		"proto": "HTTP/1.1", "status": 200.0, "bytes_received": 0.0, "bytes_sent": 6.0,
		"wait_ms": 0.0, "termination_state": "--", "retries": 0.0, "redispatched": false,
	})
	if ms(line, "connect_ms") < 0 || ms(line, "response_ms") < 0 || ms(line, "total_ms") < ms(line, "connect_ms")+ms(line, "response_ms")-0.002 {
		t.Errorf("timers of a forwarded request: %v", line)
	}
	if ts, err := time.Parse(time.RFC3339Nano, line["time"].(string)); err != nil || time.Since(ts) > time.Minute {
		t.Errorf("time %v: %v", line["time"], err)
	}

	c.send("POST /upload HTTP/1.1\r\nHost: ok\r\nContent-Length: 5\r\n\r\nhello")
	if resp, _ := c.response("POST"); resp.StatusCode != 200 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	check("request body", map[string]any{"method": "POST", "bytes_received": 5.0, "status": 200.0})

	c.send("HEAD /a HTTP/1.1\r\nHost: ok\r\n\r\n")
	if resp, _ := c.response("HEAD"); resp.StatusCode != 200 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	check("HEAD", map[string]any{"method": "HEAD", "bytes_sent": 0.0, "termination_state": "--"})

	c.send("GET /big HTTP/1.1\r\nHost: ok\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || len(body) != len(big) {
		t.Fatalf("big: %d, %d bytes", resp.StatusCode, len(body))
	}
	check("streamed body", map[string]any{"uri": "/big", "bytes_sent": float64(len(big)), "termination_state": "--", "server": "s0"})

	c.send("GET / HTTP/1.1\r\nHost: empty\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 503 {
		t.Fatalf("no server: %d", resp.StatusCode)
	}
	check("503 no server", map[string]any{"backend": "empty-be", "server": "", "status": 503.0,
		"termination_state": "SC", "wait_ms": -1.0, "connect_ms": -1.0, "response_ms": -1.0,
		"bytes_sent": float64(len(body503))})

	c.send("GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 503 {
		t.Fatalf("no route: %d", resp.StatusCode)
	}
	check("503 no route", map[string]any{"backend": "", "server": "", "status": 503.0, "termination_state": "SC"})

	c.send("POST /x HTTP/1.1\r\nHost: closing\r\nContent-Length: 1\r\n\r\nx")
	if resp, _ := c.response("POST"); resp.StatusCode != 502 {
		t.Fatalf("closing server: %d", resp.StatusCode)
	}
	check("502", map[string]any{"backend": "closing-be", "server": "s0", "status": 502.0,
		"termination_state": "SH", "response_ms": -1.0, "wait_ms": 0.0})

	c.send("POST /x HTTP/1.1\r\nHost: hung\r\nContent-Length: 1\r\n\r\nx")
	if resp, _ := c.response("POST"); resp.StatusCode != 504 {
		t.Fatalf("hung server: %d", resp.StatusCode)
	}
	line = check("504", map[string]any{"backend": "hung-be", "server": "s0", "status": 504.0,
		"termination_state": "sH", "response_ms": -1.0})
	if ms(line, "total_ms") < 100 {
		t.Errorf("504 after a 100 ms server timeout with total_ms %v", line["total_ms"])
	}

	c.send("GET / HTTP/1.1\r\nHost: ok\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 400 {
		t.Fatalf("TE and CL: %d", resp.StatusCode)
	}
	check("400 refused", map[string]any{"msg": "request", "backend": "", "status": 400.0, "termination_state": "PR"})

	c2 := dialRaw(t, addr)
	c2.send("GET / HTTP/1.1\r\nHost: ok\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
	if resp, _ := c2.response("GET"); resp.StatusCode != 400 {
		t.Fatalf("duplicate Content-Length: %d", resp.StatusCode)
	}
	check("400 parse error", map[string]any{"msg": "bad request", "frontend": "fe", "backend": "", "uri": "",
		"status": 400.0, "termination_state": "PR", "client_ip": "127.0.0.1"})

	if extra := out.lines(); len(extra) != n {
		t.Errorf("%d lines for %d requests: %q", len(extra), n, extra)
	}
}

// acceptAndClose is a server that closes every connection it accepts
// without answering.
func acceptAndClose(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// echoUpgradeBackend answers an upgrade request with 101 and then echoes
// what it reads until the client ends its side.
func echoUpgradeBackend(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if l == "\r\n" {
						break
					}
				}
				io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
				io.Copy(c, br)
			}()
		}
	}()
	return ln.Addr().String()
}

// TestAccessLogTunnel: an upgraded connection gets one line, when it ends,
// with the bytes it carried each way.
func TestAccessLogTunnel(t *testing.T) {
	alog, out := newAccessLog(t, accesslog.JSON)
	be := backendOf(t, BackendOptions{}, echoUpgradeBackend(t))
	f, addr := startFrontend(t, FrontendConfig{Name: "ws", Default: be, AccessLog: alog})
	c := dialRaw(t, addr)
	c.send("GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	c.send("hello, tunnel")
	buf := make([]byte, len("hello, tunnel"))
	if _, err := io.ReadFull(c.br, buf); err != nil || string(buf) != "hello, tunnel" {
		t.Fatalf("echo %q: %v", buf, err)
	}
	if lines := out.lines(); len(lines) != 0 {
		t.Fatalf("line written before the tunnel ended: %q", lines)
	}
	c.c.CloseWrite()
	c.expectEOF()
	line := nextLine(t, out, 0)
	expectFields(t, line, map[string]any{"msg": "tunnel", "frontend": "ws", "backend": "be", "server": "s0",
		"method": "GET", "uri": "/chat", "status": 101.0, "bytes_received": 13.0, "bytes_sent": 13.0,
		"termination_state": "--", "wait_ms": 0.0})
	if ms(line, "connect_ms") < 0 || ms(line, "response_ms") < 0 {
		t.Errorf("tunnel timers: %v", line)
	}
	for deadline := time.Now().Add(5 * time.Second); f.Stats.Tunnels.Load() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("tunnel still counted open")
		}
	}
}

// TestAccessLogHTTPLog checks a line of the httplog format end to end.
func TestAccessLogHTTPLog(t *testing.T) {
	alog, out := newAccessLog(t, accesslog.HTTPLog)
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Name: "http-in", Default: be, AccessLog: alog})
	c := dialRaw(t, addr)
	c.send(get("a", "/index.html"))
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	port := c.c.LocalAddr().(*net.TCPAddr).Port
	re := regexp.MustCompile(`^127\.0\.0\.1:` + itoa(port) + ` \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] ` +
		`http-in be/s0 0/0/\d+/\d+/\d+ 200 13 - - ---- 0/1/0/[01]/0 0/0 "GET /index\.html HTTP/1\.1"\n$`)
	for deadline := time.Now().Add(5 * time.Second); len(out.lines()) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no line")
		}
	}
	if l := out.lines()[0]; !re.MatchString(l) {
		t.Errorf("line %q does not match %s", l, re)
	}
}

// TestForwardZeroAllocsWithAccessLog is TestForwardZeroAllocs with access
// logging on, in both formats: the line costs the request path (and the
// writer goroutine, which AllocsPerRun counts too) no allocation.
func TestForwardZeroAllocsWithAccessLog(t *testing.T) {
	for _, format := range []accesslog.Format{accesslog.JSON, accesslog.HTTPLog} {
		for _, bal := range []Balance{RoundRobin, LeastConn, Source} {
			h := newForwardHarness(t, bal)
			alog := accesslog.New(io.Discard, accesslog.Options{Format: format})
			h.f.accessLog = alog
			for range 100 {
				h.once(t)
			}
			if n := testing.AllocsPerRun(1000, func() { h.once(t) }); n != 0 {
				t.Errorf("%s, %s: %v allocs per forwarded and logged request, want 0", format, bal, n)
			}
			alog.Close()
			if alog.Written() != 1101 || alog.Dropped() != 0 {
				t.Errorf("%s, %s: %d lines written, %d dropped; want 1101, 0", format, bal, alog.Written(), alog.Dropped())
			}
		}
	}
}

// BenchmarkForwardAccessLog is BenchmarkForward with access logging off
// and on.
func BenchmarkForwardAccessLog(b *testing.B) {
	for _, mode := range []string{"off", "json", "httplog"} {
		b.Run(mode, func(b *testing.B) {
			h := newForwardHarness(b, RoundRobin)
			var alog *accesslog.Logger
			if mode != "off" {
				format, _ := accesslog.ParseFormat(mode)
				alog = accesslog.New(io.Discard, accesslog.Options{Format: format})
				h.f.accessLog = alog
			}
			for range 100 {
				h.once(b)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.once(b)
			}
			b.StopTimer()
			if alog != nil {
				alog.Close()
				b.ReportMetric(float64(alog.Dropped())/float64(b.N), "dropped/op")
			}
		})
	}
}

// BenchmarkAccessLogRequestPath measures what logging adds to a request's
// own goroutine, without the network noise of BenchmarkForwardAccessLog:
// the requestLog bookkeeping, its two clock reads (Tr, Ta), building the
// entry and queueing it. The writer goroutine is held back while the clock
// runs (it formats lines on its own goroutine, not the request's) and
// catches up between batches, so nothing is dropped.
func BenchmarkAccessLogRequestPath(b *testing.B) {
	h := newForwardHarness(b, RoundRobin)
	h.once(b) // leaves a parsed request and its response in h.ctx
	be := h.f.router.def
	srv := be.Servers()[0]
	var gate sync.Mutex
	alog := accesslog.New(gatedWriter{&gate}, accesslog.Options{Slots: 8192})
	h.f.accessLog = alog
	now := time.Now() // exchange reads this clock anyway
	const batch = 4096
	gate.Lock()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == batch-1 {
			b.StopTimer()
			gate.Unlock()
			for alog.Written() < uint64(i) {
				time.Sleep(20 * time.Microsecond)
			}
			gate.Lock()
			b.StartTimer()
		}
		rl := h.f.newRequestLog(&h.ctx)
		rl.backend = be
		rl.attempt(srv, 0)
		rl.connected(now)
		rl.responded()
		h.f.logRequest(&h.ctx, &rl)
	}
	b.StopTimer()
	gate.Unlock()
	alog.Close()
	if alog.Dropped() != 0 {
		b.Fatalf("%d lines dropped", alog.Dropped())
	}
}

// gatedWriter blocks writes while its gate is held.
type gatedWriter struct{ gate *sync.Mutex }

func (g gatedWriter) Write(p []byte) (int, error) {
	g.gate.Lock()
	defer g.gate.Unlock()
	return len(p), nil
}
