package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testBackend is a real HTTP server on loopback that echoes what it saw.
type testBackend struct {
	ln      net.Listener
	srv     *http.Server
	mu      sync.Mutex
	conns   map[string]int // remote addr -> requests seen on it
	reqs    []*http.Request
	headers []http.Header
	name    string
}

func startBackend(t *testing.T, name string, h http.HandlerFunc) *testBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &testBackend{ln: ln, conns: map[string]int{}, name: name}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.conns[r.RemoteAddr]++
		b.reqs = append(b.reqs, r)
		b.headers = append(b.headers, r.Header.Clone())
		b.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("X-Backend", name)
		fmt.Fprintf(w, "hello from %s\n", name)
	})}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *testBackend) addr() string { return b.ln.Addr().String() }

func (b *testBackend) lastHeader() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.headers) == 0 {
		return nil
	}
	return b.headers[len(b.headers)-1]
}

func (b *testBackend) connCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *testBackend) requestCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

// startFrontend serves cfg on a free loopback port and returns its address.
func startFrontend(t *testing.T, cfg FrontendConfig) (*Frontend, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port == 0 {
		cfg.Port = ln.Addr().(*net.TCPAddr).Port
	}
	f, err := NewFrontend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); f.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.Shutdown(ctx)
		<-done
	})
	return f, ln.Addr().String()
}

func backendOf(t *testing.T, opts BackendOptions, addrs ...string) *Backend {
	t.Helper()
	if opts.Retries == 0 {
		opts.Retries = 3
		opts.Redispatch = true
	}
	b := NewBackend("be", opts)
	t.Cleanup(b.Close)
	specs := make([]ServerSpec, len(addrs))
	for i, a := range addrs {
		specs[i] = ServerSpec{Name: fmt.Sprintf("s%d", i), Addr: a, Weight: 1}
	}
	b.SetServers(specs)
	return b
}

// rawConn is a client connection on which tests write exact bytes.
type rawConn struct {
	t  *testing.T
	c  *net.TCPConn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c.(*net.TCPConn), br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, s); err != nil {
		r.t.Fatal(err)
	}
}

// response reads one response with net/http's parser.
func (r *rawConn) response(method string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("reading body: %v", err)
	}
	resp.Body.Close()
	return resp, string(b)
}

// expectEOF asserts the server closed the connection cleanly: a FIN (EOF),
// not a reset.
func (r *rawConn) expectEOF() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := r.br.ReadByte()
	if err == nil {
		r.t.Fatalf("connection still open: read %q", b)
	}
	if err != io.EOF {
		r.t.Fatalf("connection ended with %v, want a clean EOF (no reset)", err)
	}
}

// expectOpen asserts the connection stays open for a moment.
func (r *rawConn) expectOpen() {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err := r.br.Peek(1)
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		r.t.Fatalf("connection not open: %v", err)
	}
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
}

func get(host, path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
}

func hasToken(h http.Header, name, tok string) bool {
	for _, v := range h.Values(name) {
		for _, p := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), tok) {
				return true
			}
		}
	}
	return false
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
