package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRoundRobinAndForwardedHeaders(t *testing.T) {
	var addrs []string
	var bes []*testBackend
	for i := range 4 {
		b := startBackend(t, fmt.Sprintf("b%d", i), nil)
		bes = append(bes, b)
		addrs = append(addrs, b.addr())
	}
	be := backendOf(t, BackendOptions{Rewrite: Rewrite{ForwardFor: true, ForwardedPort: true, ForwardedProto: true}}, addrs...)
	_, addr := startFrontend(t, FrontendConfig{Default: be, Port: 80})
	c := dialRaw(t, addr)
	seen := map[string]int{}
	for range 8 {
		c.send("GET /x HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-For: 10.9.9.9\r\nX-Forwarded-Port: 1\r\n\r\n")
		resp, body := c.response("GET")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		seen[resp.Header.Get("X-Backend")]++
		if !strings.HasPrefix(body, "hello from") {
			t.Fatalf("body %q", body)
		}
		for _, h := range []string{"Server", "Date", "Content-Type"} {
			if h == "Content-Type" {
				// net/http sniffs and sets one itself: it must be the backend's.
				if got := resp.Header.Get(h); got != "text/plain; charset=utf-8" {
					t.Fatalf("Content-Type %q", got)
				}
				continue
			}
			if _, ok := resp.Header[h]; ok && h == "Server" {
				t.Fatalf("injected %s header: %q", h, resp.Header.Get(h))
			}
		}
	}
	for i := range 4 {
		if seen[fmt.Sprintf("b%d", i)] != 2 {
			t.Fatalf("round robin uneven: %v", seen)
		}
	}
	var n uint64
	for i := range be.Stats.ResponseTime {
		n += be.Stats.ResponseTime[i].Load()
	}
	if n != 8 || be.Stats.ResponseTimeSum.Load() <= 0 {
		t.Fatalf("response time histogram counted %d responses (sum %d ns), want 8", n, be.Stats.ResponseTimeSum.Load())
	}
	h := bes[0].lastHeader()
	if got := h.Values("X-Forwarded-For"); len(got) != 2 || got[0] != "10.9.9.9" || got[1] != "127.0.0.1" {
		t.Fatalf("X-Forwarded-For = %q, want the client's appended", got)
	}
	if got := h.Values("X-Forwarded-Port"); len(got) != 1 || got[0] != "80" {
		t.Fatalf("X-Forwarded-Port = %q, want set to 80", got)
	}
	if got := h.Get("X-Forwarded-Proto"); got != "" {
		t.Fatalf("X-Forwarded-Proto on a plain frontend: %q", got)
	}
	if got := h.Get("User-Agent"); got != "" {
		t.Fatalf("injected User-Agent %q", got)
	}
}

func TestHopByHopHeadersRemoved(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Resp-Private")
		w.Header().Set("X-Resp-Private", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "1")
		w.Write([]byte("ok"))
	})
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Private, x-other\r\n" +
		"x-private: 1\r\nX-OTHER: 2\r\nkeep-alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\n" +
		"Upgrade: h2c\r\nX-Public: yes\r\n\r\n")
	resp, _ := c.response("GET")
	h := b.lastHeader()
	for _, name := range []string{"Connection", "X-Private", "X-Other", "Keep-Alive", "Te", "Proxy-Connection", "Upgrade"} {
		if v, ok := h[http.CanonicalHeaderKey(name)]; ok {
			t.Errorf("backend received hop-by-hop %s: %q", name, v)
		}
	}
	if h.Get("X-Public") != "yes" {
		t.Errorf("end-to-end header lost")
	}
	for _, name := range []string{"X-Resp-Private", "Keep-Alive"} {
		if v := resp.Header.Get(name); v != "" {
			t.Errorf("client received hop-by-hop %s: %q", name, v)
		}
	}
	if resp.Header.Get("X-Kept") != "1" {
		t.Errorf("end-to-end response header lost")
	}
	if resp.Close {
		t.Errorf("unexpected Connection: close")
	}
}

func TestClientCloseKeepsBackendConnection(t *testing.T) {
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	for i, conn := range []string{"close", "Keep-Alive, Close", "CLOSE"} {
		c := dialRaw(t, addr)
		c.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: " + conn + "\r\n\r\n")
		resp, _ := c.response("GET")
		if !resp.Close {
			t.Fatalf("%q: response lacks Connection: close: %v", conn, resp.Header)
		}
		c.expectEOF()
		if n := b.connCount(); n != 1 {
			t.Fatalf("after %d client closes the backend saw %d connections, want 1 reused", i+1, n)
		}
	}
	// HTTP/1.0 without keep-alive closes too; with keep-alive it stays.
	c := dialRaw(t, addr)
	c.send("GET / HTTP/1.0\r\nHost: a\r\n\r\n")
	c.response("GET")
	c.expectEOF()
	c = dialRaw(t, addr)
	c.send("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
	resp, _ := c.response("GET")
	if !hasToken(resp.Header, "Connection", "keep-alive") {
		t.Fatalf("HTTP/1.0 keep-alive response lacks Connection: keep-alive: %v", resp.Header)
	}
	c.expectOpen()
}

func TestBackendCloseKeepsClientConnection(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	})
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	for i := range 3 {
		c.send(get("a", "/"))
		resp, body := c.response("GET")
		if body != "bye" || resp.Close {
			t.Fatalf("request %d: body %q header %v", i, body, resp.Header)
		}
		c.expectOpen()
	}
	if n := b.connCount(); n != 3 {
		t.Fatalf("backend saw %d connections, want 3 (each retired after close)", n)
	}
}

func TestMaxRequestsPerConnSaysClose(t *testing.T) {
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be, MaxRequestsPerConn: 2})
	c := dialRaw(t, addr)
	c.send(get("a", "/"))
	resp, _ := c.response("GET")
	if resp.Close {
		t.Fatal("first response says close")
	}
	c.send(get("a", "/"))
	resp, _ = c.response("GET")
	if !resp.Close {
		t.Fatal("last response does not say close")
	}
	c.expectEOF()
}

func TestIdleTimeoutClosesCleanly(t *testing.T) {
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be, Timeouts: Timeouts{KeepAlive: 200 * time.Millisecond}})
	c := dialRaw(t, addr)
	c.send(get("a", "/"))
	c.response("GET")
	start := time.Now()
	c.expectEOF()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
}

func TestErrorsMapToStatus(t *testing.T) {
	t.Run("no servers gives 503", func(t *testing.T) {
		be := backendOf(t, BackendOptions{})
		_, addr := startFrontend(t, FrontendConfig{Default: be})
		c := dialRaw(t, addr)
		c.send(get("a", "/"))
		resp, body := c.response("GET")
		if resp.StatusCode != 503 || body != "503 Service Unavailable\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		c.expectOpen()
	})
	t.Run("no route and no default gives 503", func(t *testing.T) {
		b := startBackend(t, "b", nil)
		be := backendOf(t, BackendOptions{}, b.addr())
		_, addr := startFrontend(t, FrontendConfig{Routes: []Route{{Backend: be, PathBeg: "/api"}}})
		c := dialRaw(t, addr)
		c.send(get("a", "/other"))
		if resp, _ := c.response("GET"); resp.StatusCode != 503 {
			t.Fatalf("got %d", resp.StatusCode)
		}
		c.send(get("a", "/api/x"))
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
	t.Run("dead servers are retried", func(t *testing.T) {
		b := startBackend(t, "b", nil)
		dead := deadAddr(t)
		be := backendOf(t, BackendOptions{}, dead, b.addr(), deadAddr(t))
		_, addr := startFrontend(t, FrontendConfig{Default: be})
		c := dialRaw(t, addr)
		for i := range 9 {
			c.send(get("a", "/"))
			if resp, _ := c.response("GET"); resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
		}
	})
	t.Run("all dead gives 502", func(t *testing.T) {
		be := backendOf(t, BackendOptions{}, deadAddr(t))
		_, addr := startFrontend(t, FrontendConfig{Default: be})
		c := dialRaw(t, addr)
		c.send(get("a", "/"))
		if resp, _ := c.response("GET"); resp.StatusCode != 502 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
	t.Run("slow server gives 504", func(t *testing.T) {
		b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(500 * time.Millisecond)
		})
		be := backendOf(t, BackendOptions{Timeouts: Timeouts{Server: 100 * time.Millisecond}}, b.addr())
		_, addr := startFrontend(t, FrontendConfig{Default: be})
		c := dialRaw(t, addr)
		c.send(get("a", "/"))
		if resp, body := c.response("GET"); resp.StatusCode != 504 || body != "504 Gateway Timeout\n" {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	})
	t.Run("hung server: GET goes elsewhere, POST gets 504", func(t *testing.T) {
		hung := startBackend(t, "hung", func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(400 * time.Millisecond)
		})
		good := startBackend(t, "good", nil)
		be := backendOf(t, BackendOptions{Timeouts: Timeouts{Server: 100 * time.Millisecond}}, hung.addr(), good.addr())
		_, addr := startFrontend(t, FrontendConfig{Default: be})
		c := dialRaw(t, addr)
		for i := range 4 {
			c.send(get("a", "/"))
			if resp, _ := c.response("GET"); resp.StatusCode != 200 {
				t.Fatalf("GET %d: %d", i, resp.StatusCode)
			}
		}
		posts504 := 0
		for range 4 {
			c.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx")
			resp, _ := c.response("POST")
			switch resp.StatusCode {
			case 200:
			case 504:
				posts504++
			default:
				t.Fatalf("POST: %d", resp.StatusCode)
			}
		}
		if posts504 != 2 {
			t.Fatalf("%d POSTs got 504, want the 2 sent to the hung server (never replayed)", posts504)
		}
	})
	t.Run("reset mid-response gives a clean end", func(t *testing.T) {
		b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/small" {
				hj, _ := w.(http.Hijacker)
				conn, _, _ := hj.Hijack()
				conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"))
				conn.(interface{ SetLinger(int) error }).SetLinger(0)
				conn.Close()
				return
			}
			w.Write([]byte("fine"))
		})
		be := backendOf(t, BackendOptions{}, b.addr())
		_, addr := startFrontend(t, FrontendConfig{Default: be})
		c := dialRaw(t, addr)
		c.send(get("a", "/small"))
		resp, body := c.response("GET")
		if resp.StatusCode != 502 {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		c2 := dialRaw(t, addr)
		c2.send(get("a", "/ok"))
		if resp, body := c2.response("GET"); resp.StatusCode != 200 || body != "fine" {
			t.Fatalf("other client affected: %d %q", resp.StatusCode, body)
		}
	})
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	b := startBackend(t, "dead", nil)
	a := b.addr()
	b.srv.Close()
	return a
}

func TestHostRewrite(t *testing.T) {
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Host) })
	be := backendOf(t, BackendOptions{Rewrite: Rewrite{Host: "internal.example"}}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	c.send(get("public.example", "/"))
	if _, body := c.response("GET"); body != "internal.example" {
		t.Fatalf("backend saw Host %q", body)
	}
}
