package proxy

import (
	"io"
	"net/http"
	"testing"
)

func TestAcceptProxy(t *testing.T) {
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{Rewrite: Rewrite{ForwardFor: true}}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be, AcceptProxy: true})

	c := dialRaw(t, addr)
	c.send("PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\n" + get("a", "/"))
	if resp, _ := c.response("GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := b.lastHeader().Values("X-Forwarded-For"); len(got) != 1 || got[0] != "203.0.113.7" {
		t.Fatalf("X-Forwarded-For = %q, want the PROXY source", got)
	}
	// Without the header the connection is refused: no request is served.
	before := b.requestCount()
	c2 := dialRaw(t, addr)
	c2.send(get("a", "/"))
	if n, err := io.ReadAll(c2.br); len(n) != 0 && err == nil {
		t.Fatalf("served without a PROXY header: %q", n)
	}
	if b.requestCount() != before {
		t.Fatal("backend got a request that came without a PROXY header")
	}
}

func TestCloseLazily(t *testing.T) {
	b := startBackend(t, "b", nil)
	be := backendOf(t, BackendOptions{}, b.addr())
	f, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	c.send(get("a", "/"))
	if resp, _ := c.response("GET"); resp.Close {
		t.Fatal("close before CloseLazily")
	}
	f.CloseLazily()
	c.expectOpen() // idle connections are not cut
	c.send(get("a", "/"))
	resp, _ := c.response("GET")
	if !resp.Close || resp.StatusCode != http.StatusOK {
		t.Fatalf("after CloseLazily: status %d close=%v", resp.StatusCode, resp.Close)
	}
	c.expectEOF()
}
