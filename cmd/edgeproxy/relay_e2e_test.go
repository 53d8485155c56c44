package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// End-to-end tests of keep-alive behind stand-ins for the AWS balancers
// (docs/aws.md, "Idle timeouts and keep-alive"), with the timeouts scaled
// down from seconds to milliseconds: edgeproxy's --timeout-keep-alive is
// 600 ms; the L7 relay (ALB/CLB) pools its connections to edgeproxy for
// 400 ms, below edgeproxy's, as the docs require; the L4 relay (NLB)
// forgets a flow idle for 800 ms, above edgeproxy's, as the docs require.
// Clients pause around each of these timeouts between requests, and both
// sides sometimes say "Connection: close".

const (
	relayKeepAlive = 600 * time.Millisecond  // edgeproxy --timeout-keep-alive
	l7RelayIdle    = 400 * time.Millisecond  // ALB/CLB idle timeout, below it
	l4RelayIdle    = 1200 * time.Millisecond // NLB flow idle timeout, well above it (room for a busy machine)
)

// l4Relay stands in for an NLB: a TCP pass-through that keeps an idle
// timer per flow. Like the NLB's flow table it forgets a flow idle for
// longer than its timeout without telling either side; the next segment
// from either side (data or FIN) is answered with a reset, which it models
// by closing both sockets with SO_LINGER 0.
type l4Relay struct {
	ln     net.Listener
	target string
	idle   time.Duration

	mu    sync.Mutex
	conns []net.Conn

	flows     atomic.Int64
	forgotten atomic.Int64 // flows reset because they were idle too long
	peerRST   atomic.Int64 // flows a peer reset (a read error other than EOF)
	serverFIN atomic.Int64 // flows whose server side (edgeproxy) closed first
	clientFIN atomic.Int64 // flows whose client side closed first
}

func startL4Relay(t *testing.T, target string, idle time.Duration) *l4Relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &l4Relay{ln: ln, target: target, idle: idle}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.flow(c.(*net.TCPConn))
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.conns {
			c.Close()
		}
	})
	return r
}

func (r *l4Relay) addr() string { return r.ln.Addr().String() }

type l4Flow struct {
	r              *l4Relay
	client, server *net.TCPConn
	mu             sync.Mutex
	last           time.Time // the last segment in either direction
	dead           bool
	fins           int
}

func (r *l4Relay) flow(client *net.TCPConn) {
	sc, err := net.Dial("tcp", r.target)
	if err != nil {
		client.SetLinger(0)
		client.Close()
		return
	}
	server := sc.(*net.TCPConn)
	r.mu.Lock()
	r.conns = append(r.conns, client, server)
	r.mu.Unlock()
	r.flows.Add(1)
	f := &l4Flow{r: r, client: client, server: server, last: time.Now()}
	go f.pump(client, server, false)
	f.pump(server, client, true)
}

// pump copies src to dst, segment by segment, checking the flow's idle
// timer as each one arrives.
func (f *l4Flow) pump(src, dst *net.TCPConn, fromServer bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		f.mu.Lock()
		if f.dead {
			f.mu.Unlock()
			return
		}
		now := time.Now()
		if now.Sub(f.last) > f.r.idle {
			f.r.forgotten.Add(1)
			f.resetLocked()
			f.mu.Unlock()
			return
		}
		f.last = now
		f.mu.Unlock()
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				f.mu.Lock()
				f.resetLocked()
				f.mu.Unlock()
				return
			}
		}
		if err == nil {
			continue
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.dead {
			return
		}
		if err != io.EOF {
			f.r.peerRST.Add(1)
			f.resetLocked()
			return
		}
		dst.CloseWrite()
		f.fins++
		if f.fins == 1 {
			if fromServer {
				f.r.serverFIN.Add(1)
			} else {
				f.r.clientFIN.Add(1)
			}
		}
		if f.fins == 2 {
			f.dead = true
			f.client.Close()
			f.server.Close()
		}
		return
	}
}

func (f *l4Flow) resetLocked() {
	f.dead = true
	f.client.SetLinger(0)
	f.server.SetLinger(0)
	f.client.Close()
	f.server.Close()
}

// l7Relay stands in for an ALB or CLB HTTP listener: a reverse proxy that
// pools its connections to edgeproxy and closes them after its idle
// timeout. It counts what a balancer would turn into a 502 and what Go's
// Transport hides by retrying.
type l7Relay struct {
	url string

	errors     atomic.Int64 // requests answered 502 (ErrorHandler)
	retried    atomic.Int64 // requests the Transport sent more than once
	reused     atomic.Int64 // requests sent on a pooled connection
	fresh      atomic.Int64 // requests sent on a new connection
	peerClosed atomic.Int64 // pooled connections edgeproxy closed first

	mu    sync.Mutex
	order []bool // per request, in order: sent on a pooled connection
}

func startL7Relay(t *testing.T, target string, idle time.Duration) *l7Relay {
	r := &l7Relay{}
	u, _ := url.Parse("http://" + target)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &watchedConn{Conn: c, r: r}, nil
		},
		IdleConnTimeout:     idle,
		MaxIdleConnsPerHost: 16,
		DisableCompression:  true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
		Transport: countingTransport{tr, r},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			r.errors.Add(1)
			http.Error(w, "relay: "+err.Error(), http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(rp) // no idle timeout towards the clients
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

type countingTransport struct {
	rt http.RoundTripper
	r  *l7Relay
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var conns atomic.Int32
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		if conns.Add(1) == 1 {
			c.r.mu.Lock()
			c.r.order = append(c.r.order, i.Reused)
			c.r.mu.Unlock()
		}
		if i.Reused {
			c.r.reused.Add(1)
		} else {
			c.r.fresh.Add(1)
		}
	}}
	resp, err := c.rt.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if conns.Load() > 1 {
		c.r.retried.Add(1)
	}
	return resp, err
}

// watchedConn counts a connection whose peer closed it while this side had
// not: for a pooled connection to edgeproxy, edgeproxy closed first.
type watchedConn struct {
	net.Conn
	r       *l7Relay
	closed  atomic.Bool
	counted atomic.Bool
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err == io.EOF && !c.closed.Load() && c.counted.CompareAndSwap(false, true) {
		c.r.peerClosed.Add(1)
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

// relayBackend answers GETs with the customer page and echoes POST bodies;
// on /server-close it also says "Connection: close".
func relayBackend(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/server-close" {
			w.Header().Set("Connection", "close")
		}
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			w.Write(b)
			return
		}
		io.WriteString(w, "Customer Application")
	}
}

// pausedResult is one request of pausedClients.
type pausedResult struct {
	pause      time.Duration // idle time on this client before the request
	desc       string
	err        error
	reused     bool // the client sent it on a kept-alive connection
	retried    bool // the client's Transport sent it twice
	afterClose bool // the previous response on this client said close
}

// pausedClients runs clients that each pause for every duration of
// pauses (in an order of their own) before a request, twice over. Requests
// alternate GET and POST; every fifth says "Connection: close"; every
// third goes to /server-close.
func pausedClients(base string, clients int, pauses []time.Duration) []pausedResult {
	var mu sync.Mutex
	var out []pausedResult
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			prevClose := true
			for i := range 2 * len(pauses) {
				pause := pauses[(i*(c+1)+c)%len(pauses)]
				time.Sleep(pause)
				path, method, body := "/", http.MethodGet, ""
				if i%3 == 2 {
					path = "/server-close"
				}
				if i%2 == 1 {
					method, body = http.MethodPost, fmt.Sprintf("payload %d/%d", c, i)
				}
				req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
				req.Close = i%5 == 4
				var conns atomic.Int32
				res := pausedResult{pause: pause, afterClose: prevClose,
					desc: fmt.Sprintf("client %d request %d: %s %s close=%v after %v idle", c, i, method, path, req.Close, pause)}
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
					conns.Add(1)
					res.reused = res.reused || i.Reused
				}}
				resp, err := hc.Do(req.WithContext(httptrace.WithClientTrace(context.Background(), trace)))
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					want := "Customer Application"
					if method == http.MethodPost {
						want = body
					}
					if err == nil && (resp.StatusCode != 200 || string(b) != want) {
						err = fmt.Errorf("status %d %q", resp.StatusCode, b)
					}
					prevClose = resp.Close
				} else {
					prevClose = true
				}
				res.err, res.retried = err, conns.Load() > 1
				mu.Lock()
				out = append(out, res)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

func ms(d ...int) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, v := range d {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

// startRelayedProxy runs edgeproxy with --timeout-keep-alive keepAlive in
// front of one relayBackend and returns its address.
func startRelayedProxy(t *testing.T, keepAlive time.Duration) string {
	bs := startCustomers(t, 1, relayBackend)
	_, addr, _ := runSeed(t, addrsOf(bs), "--timeout-keep-alive", keepAlive.String())
	return addr
}

func checkPaused(t *testing.T, res []pausedResult) {
	t.Helper()
	var failed []string
	for _, r := range res {
		if r.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.desc, r.err))
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed: %q", len(failed), len(res), failed)
	}
}

// TestKeepAliveBehindL7Relay: behind an ALB/CLB stand-in whose idle timeout
// is below edgeproxy's keep-alive, no request fails, the relay's Transport
// never has to retry one, and edgeproxy never closes a pooled connection
// first (the balancer always does). Two relays run side by side: one with
// a single client, so that its pooled connection is idle exactly as long
// as the client pauses (reused below the relay's timeout, replaced above
// it), and one shared by four clients.
func TestKeepAliveBehindL7Relay(t *testing.T) {
	t.Parallel()
	addr := startRelayedProxy(t, relayKeepAlive)
	pauses := ms(0, 300, 350, 450, 500, 550, 650, 700, 900)
	single, shared := startL7Relay(t, addr, l7RelayIdle), startL7Relay(t, addr, l7RelayIdle)
	var singleRes, sharedRes []pausedResult
	var wg sync.WaitGroup
	wg.Go(func() { singleRes = pausedClients(single.url, 1, pauses) })
	wg.Go(func() { sharedRes = pausedClients(shared.url, 4, pauses) })
	wg.Wait()
	checkPaused(t, append(singleRes, sharedRes...))
	for name, relay := range map[string]*l7Relay{"single-client relay": single, "shared relay": shared} {
		t.Logf("%s: %d on pooled connections, %d on new ones, %d retried, %d errors, %d closed by edgeproxy first",
			name, relay.reused.Load(), relay.fresh.Load(), relay.retried.Load(), relay.errors.Load(), relay.peerClosed.Load())
		if n := relay.errors.Load(); n > 0 {
			t.Errorf("%s: answered %d requests with 502", name, n)
		}
		if n := relay.retried.Load(); n > 0 {
			t.Errorf("%s: its Transport had to resend %d requests", name, n)
		}
		if n := relay.peerClosed.Load(); n > 0 {
			t.Errorf("%s: edgeproxy closed %d pooled connections before the relay did", name, n)
		}
	}
	single.mu.Lock()
	order := append([]bool(nil), single.order...)
	single.mu.Unlock()
	if len(order) != len(singleRes) {
		t.Fatalf("the single-client relay saw %d requests, the client sent %d", len(order), len(singleRes))
	}
	for i, r := range singleRes[1:] {
		switch reused := order[i+1]; {
		case r.pause <= l7RelayIdle-100*time.Millisecond && !reused:
			t.Errorf("single-client relay did not reuse its connection: %s", r.desc)
		case r.pause >= l7RelayIdle+100*time.Millisecond && reused:
			t.Errorf("single-client relay reused a connection past its idle timeout: %s", r.desc)
		}
	}
}

// TestKeepAliveBehindL4Relay: behind an NLB stand-in whose flow idle timeout
// is above edgeproxy's keep-alive, edgeproxy closes idle connections
// politely (a FIN the clients see) before the relay forgets their flows:
// no flow is ever reset, no request fails or is retried, a connection idle
// past edgeproxy's keep-alive is never reused, and a connection idle for
// less is.
func TestKeepAliveBehindL4Relay(t *testing.T) {
	t.Parallel()
	addr := startRelayedProxy(t, relayKeepAlive)
	relay := startL4Relay(t, addr, l4RelayIdle)
	res := pausedClients("http://"+relay.addr(), 4, ms(0, 350, 450, 500, 700, 750, 850, 950))
	checkPaused(t, res)
	var reusedShort, reusedLong, retried int
	for _, r := range res {
		if r.retried {
			retried++
			t.Errorf("retried by the client: %s", r.desc)
		}
		switch {
		case r.reused && r.pause >= relayKeepAlive+100*time.Millisecond:
			reusedLong++
			t.Errorf("reused after edgeproxy's keep-alive timeout: %s", r.desc)
		case r.reused && !r.afterClose && r.pause <= relayKeepAlive-100*time.Millisecond:
			reusedShort++
		}
	}
	t.Logf("%d requests: %d reused within the keep-alive timeout, %d after it, %d retried; relay: %d flows, %d closed first by edgeproxy, %d by the client, %d forgotten and reset, %d reset by a peer",
		len(res), reusedShort, reusedLong, retried, relay.flows.Load(), relay.serverFIN.Load(), relay.clientFIN.Load(), relay.forgotten.Load(), relay.peerRST.Load())
	if n := relay.forgotten.Load(); n > 0 {
		t.Errorf("%d flows were idle past the relay's timeout and reset", n)
	}
	if n := relay.peerRST.Load(); n > 0 {
		t.Errorf("%d flows were reset by a peer", n)
	}
	if relay.serverFIN.Load() == 0 {
		t.Error("edgeproxy never closed an idle connection first")
	}
	if reusedShort == 0 {
		t.Error("no connection was reused within the keep-alive timeout")
	}
}

// TestKeepAliveAboveL4RelayIdleResets is the control for
// TestKeepAliveBehindL4Relay: with edgeproxy's keep-alive above the NLB
// stand-in's idle timeout (against docs/aws.md), a client that waits
// between the two meets a reset: a POST fails and a GET survives only
// because the client resends it. This proves the relay and the counters
// see the hazard the recommended setting avoids.
func TestKeepAliveAboveL4RelayIdleResets(t *testing.T) {
	t.Parallel()
	addr := startRelayedProxy(t, 2*time.Second)
	relay := startL4Relay(t, addr, l4RelayIdle)
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	do := func(method string) (resent bool, err error) {
		var conns atomic.Int32
		trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { conns.Add(1) }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), method, "http://"+relay.addr()+"/", strings.NewReader("x"))
		resp, err := hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return conns.Load() > 1, err
	}
	if _, err := do(http.MethodGet); err != nil {
		t.Fatal(err)
	}
	time.Sleep(l4RelayIdle + 300*time.Millisecond)
	if _, err := do(http.MethodPost); err == nil || !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Errorf("POST on a forgotten flow: %v, want a reset", err)
	}
	if _, err := do(http.MethodGet); err != nil {
		t.Fatal(err)
	}
	time.Sleep(l4RelayIdle + 300*time.Millisecond)
	if resent, err := do(http.MethodGet); err != nil || !resent {
		t.Errorf("GET on a forgotten flow: resent=%v %v, want it resent and answered", resent, err)
	}
	if n := relay.forgotten.Load(); n != 2 {
		t.Errorf("%d flows forgotten and reset, want 2", n)
	}
}
