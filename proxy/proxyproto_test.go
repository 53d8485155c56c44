package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
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

// TestTrustForwardedFor: behind a trusted HTTP balancer the client is the
// address it appended to X-Forwarded-For ("source" balancing sees many
// clients); from an untrusted peer the header is ignored (one client).
func TestTrustForwardedFor(t *testing.T) {
	var addrs []string
	var bes []*testBackend
	for i := range 4 {
		b := startBackend(t, fmt.Sprint("b", i), nil)
		bes = append(bes, b)
		addrs = append(addrs, b.addr())
	}
	servedBy := func(trust []netip.Prefix) map[string]bool {
		be := backendOf(t, BackendOptions{Balance: Source, Rewrite: Rewrite{ForwardFor: true}}, addrs...)
		_, addr := startFrontend(t, FrontendConfig{Default: be, TrustForwardedFor: trust})
		c := dialRaw(t, addr)
		seen := map[string]bool{}
		for i := range 32 {
			c.send(fmt.Sprintf("GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.%d\r\n\r\n", i+1))
			resp, _ := c.response("GET")
			seen[resp.Header.Get("X-Backend")] = true
		}
		return seen
	}
	if got := servedBy(nil); len(got) != 1 {
		t.Fatalf("untrusted peer: X-Forwarded-For changed the source hash: %v", got)
	}
	if got := servedBy([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}); len(got) < 3 {
		t.Fatalf("trusted balancer: 32 clients reached only %v", got)
	}
	// The forwarded header keeps the balancer's value and appends the peer.
	checked := 0
	for _, b := range bes {
		h := b.lastHeader()
		if h == nil {
			continue
		}
		checked++
		if got := h.Values("X-Forwarded-For"); len(got) != 2 || got[1] != "127.0.0.1" {
			t.Fatalf("X-Forwarded-For %q, want the balancer's then the peer", got)
		}
	}
	if checked == 0 {
		t.Fatal("no backend saw a request")
	}
}

func TestParseIP(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1": "10.0.0.1", "255.255.255.255": "255.255.255.255", "2001:db8::1": "2001:db8::1",
		"256.0.0.1": "", "1.2.3": "", "1.2.3.4.5": "", "": "", "a.b.c.d": "", "01.2.3.4": "1.2.3.4",
	} {
		a, ok := parseIP([]byte(in))
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("parseIP(%q) = %q, want %q", in, got, want)
		}
	}
}
