package proxy

import (
	"bufio"
	"bytes"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// cannedBackend answers every request head with the same response and
// allocates nothing per request, so allocation counts measure edgeproxy.
func cannedBackend(tb testing.TB, resp string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	out := []byte(resp)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						copy(buf, buf[i+4:have])
						have -= i + 4
						if _, err := c.Write(out); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// forwardHarness drives Frontend.handle directly with a parsed request, as
// fasthttp's server loop would, minus the client socket.
type forwardHarness struct {
	f   *Frontend
	ctx fasthttp.RequestCtx
	raw []byte
	rd  *bytes.Reader
	br  *bufio.Reader
}

func newForwardHarness(tb testing.TB, balance Balance) *forwardHarness {
	page := "<html><body>Customer Application</body></html>\n"
	resp := "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: " +
		itoa(len(page)) + "\r\nConnection: keep-alive\r\n\r\n" + page
	var addrs []string
	for range 4 {
		addrs = append(addrs, cannedBackend(tb, resp))
	}
	be := NewBackend("customer-backend", BackendOptions{Balance: balance, Retries: 3, Redispatch: true,
		Rewrite: Rewrite{ForwardFor: true, ForwardedPort: true, ForwardedProto: true}})
	specs := make([]ServerSpec, len(addrs))
	for i, a := range addrs {
		specs[i] = ServerSpec{Addr: a, Weight: 1}
	}
	be.SetServers(specs)
	f, err := NewFrontend(FrontendConfig{Default: be, Port: 80})
	if err != nil {
		tb.Fatal(err)
	}
	h := &forwardHarness{f: f,
		raw: []byte("GET /index.html HTTP/1.1\r\nHost: customer.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n")}
	h.rd = bytes.NewReader(h.raw)
	h.br = bufio.NewReader(h.rd)
	var req fasthttp.Request
	h.ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return h
}

func (h *forwardHarness) once(tb testing.TB) {
	h.rd.Reset(h.raw)
	h.br.Reset(h.rd)
	h.ctx.Request.Reset()
	h.ctx.Request.Header.DisableNormalizing()
	if err := h.ctx.Request.Read(h.br); err != nil {
		tb.Fatal(err)
	}
	h.ctx.Response.Reset()
	h.f.handle(&h.ctx)
	if c := h.ctx.Response.StatusCode(); c != 200 {
		tb.Fatalf("status %d: %s", c, h.ctx.Response.Body())
	}
}

func itoa(n int) string {
	return string(fasthttpAppendUint(nil, n))
}

func fasthttpAppendUint(dst []byte, n int) []byte { return fasthttp.AppendUint(dst, n) }

// TestForwardZeroAllocs guards the hot path: routing, picking a server,
// taking a pooled connection, writing the request head and reading the
// response must not allocate, for every balancing algorithm.
func TestForwardZeroAllocs(t *testing.T) {
	for _, bal := range []Balance{RoundRobin, StaticRR, LeastConn, Source, Random} {
		h := newForwardHarness(t, bal)
		for range 100 { // warm pools and connections
			h.once(t)
		}
		if n := testing.AllocsPerRun(1000, func() { h.once(t) }); n != 0 {
			t.Errorf("%s: %v allocs per forwarded request, want 0", bal, n)
		}
	}
}

func BenchmarkForward(b *testing.B) {
	h := newForwardHarness(b, RoundRobin)
	for range 100 {
		h.once(b)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		h.once(b)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, bal := range []Balance{RoundRobin, LeastConn, Source, Random} {
		b.Run(string(bal), func(b *testing.B) {
			be := NewBackend("b", BackendOptions{Balance: bal})
			var specs []ServerSpec
			for i := range 16 {
				specs = append(specs, ServerSpec{Addr: "127.0.0.1:" + itoa(10000+i), Weight: 1 + i%3})
			}
			be.SetServers(specs)
			b.ReportAllocs()
			for b.Loop() {
				if be.pick(12345, nil) == nil {
					b.Fatal("no server")
				}
			}
		})
	}
}

func BenchmarkRequestHead(b *testing.B) {
	raw := []byte("Host: customer.example.com\r\nUser-Agent: wrk\r\nAccept: */*\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n")
	var info requestHeadInfo
	scanRequestHead(raw, &info)
	rw := rewrite{forwardFor: true, forwardedPort: true}
	dst := make([]byte, 0, 1024)
	addr := clientAddrFrom(net.IPv4(127, 0, 0, 1))
	b.ReportAllocs()
	for b.Loop() {
		var info requestHeadInfo
		scanRequestHead(raw, &info)
		dst = appendRequestHead(dst[:0], []byte("GET"), []byte("/index.html"), raw, &info, &rw, addr, []byte("80"), false, -2, false)
	}
}
