package proxy

import (
	"testing"
	"time"
)

// A client that asked to close gets a plain close once its request was
// read: the connection is gone at once, not after the lingering read,
// even while the client keeps its end open.
func TestClientCloseEndsWithoutLingering(t *testing.T) {
	be := backendOf(t, BackendOptions{}, cannedBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f, addr := startFrontend(t, FrontendConfig{Default: be, Linger: 5 * time.Second})
	c := dialRaw(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok" || !resp.Close {
		t.Fatalf("got %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
	c.expectEOF()
	waitFor(t, time.Second, "connection still open on the proxy", func() bool { return f.Stats.Conns.Load() == 0 })
}

// When edgeproxy decides to close (here after the first request), the
// client may already be sending its next request: the connection lingers,
// reading and discarding, so that no reset destroys the response.
func TestServerCloseLingers(t *testing.T) {
	be := backendOf(t, BackendOptions{}, cannedBackend(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f, addr := startFrontend(t, FrontendConfig{Default: be, MaxRequestsPerConn: 1, Linger: 5 * time.Second})
	c := dialRaw(t, addr)
	c.send(get("a", "/"))
	if resp, _ := c.response("GET"); !resp.Close {
		t.Fatal("no Connection: close after the last allowed request")
	}
	c.expectEOF()
	time.Sleep(300 * time.Millisecond)
	if n := f.Stats.Conns.Load(); n != 1 {
		t.Fatalf("%d connections open, want the lingering one", n)
	}
	// A late request is read and dropped, not answered with a reset.
	c.send(get("a", "/late"))
	c.c.Close()
	waitFor(t, 2*time.Second, "lingering connection did not end with the client's close", func() bool { return f.Stats.Conns.Load() == 0 })
}
