package proxy

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLazyDeadlineArm(t *testing.T) {
	var l lazyDeadline
	base := time.Unix(1000, 0)
	slack := 100 * time.Millisecond
	at, ok := l.arm(base, slack)
	if !ok || !at.Equal(base.Add(slack)) {
		t.Fatalf("first arm: %v %v, want %v true", at, ok, base.Add(slack))
	}
	// Asked for a little later, within the slack: the armed one serves.
	if _, ok := l.arm(base.Add(60*time.Millisecond), slack); ok {
		t.Fatal("re-armed a deadline within the slack")
	}
	// Asked for exactly the armed time: still serves.
	if _, ok := l.arm(base.Add(slack), slack); ok {
		t.Fatal("re-armed for the armed time itself")
	}
	// Asked for later than armed: it must move, or it would fire early.
	want := base.Add(slack + time.Millisecond)
	if at, ok := l.arm(want, slack); !ok || !at.Equal(want.Add(slack)) {
		t.Fatalf("push out: %v %v, want %v true", at, ok, want.Add(slack))
	}
	// Asked for much earlier (more than the slack): it must move in.
	if at, ok := l.arm(base, slack); !ok || !at.Equal(base.Add(slack)) {
		t.Fatalf("pull in: %v %v", at, ok)
	}
	l.forget()
	if _, ok := l.arm(base, slack); !ok {
		t.Fatal("not re-armed after forget")
	}
	if got := deadlineSlack(30 * time.Second); got != time.Second {
		t.Errorf("slack of 30s = %v, want 1s", got)
	}
	if got := deadlineSlack(160 * time.Millisecond); got != 10*time.Millisecond {
		t.Errorf("slack of 160ms = %v, want 10ms", got)
	}
}

// A reused backend connection whose deadline was armed for an earlier
// request still times a slow response from its own start: the timeout
// fires no earlier than the server timeout, and not much later.
func TestServerTimeoutOnReusedConnection(t *testing.T) {
	const timeout = 200 * time.Millisecond
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(3 * timeout)
		}
	})
	be := backendOf(t, BackendOptions{Timeouts: Timeouts{Server: timeout}}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be})
	c := dialRaw(t, addr)
	for round := range 3 {
		for i := range 20 {
			c.send(get("a", "/"))
			if resp, _ := c.response("GET"); resp.StatusCode != 200 {
				t.Fatalf("round %d request %d: %d", round, i, resp.StatusCode)
			}
		}
		// Half the timeout later the armed deadline is near: a request
		// that relied on it would time out early.
		time.Sleep(timeout / 2)
		start := time.Now()
		c.send("POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
		resp, _ := c.response("POST")
		took := time.Since(start)
		if resp.StatusCode != 504 {
			t.Fatalf("round %d: slow request got %d, want 504", round, resp.StatusCode)
		}
		if took < timeout {
			t.Fatalf("round %d: 504 after %v, before the %v server timeout", round, took, timeout)
		}
		if took >= 3*timeout {
			t.Fatalf("round %d: 504 after %v, want about %v", round, took, timeout)
		}
	}
	if n := b.connCount(); n < 2 {
		t.Fatalf("backend saw %d connections; a timed-out one must not be reused", n)
	}
}

// The client's write deadline (the client timeout) still ends a response
// to a client that stopped reading.
func TestClientTimeoutOnStalledReader(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const total = 512 << 20 // far more than loopback buffers hold
	chunk := []byte(strings.Repeat("x", 64<<10))
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(total))
		for sent := 0; sent < total; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	be := backendOf(t, BackendOptions{}, b.addr())
	_, addr := startFrontend(t, FrontendConfig{Default: be, Timeouts: Timeouts{Client: timeout}})
	c := dialRaw(t, addr)
	for i := range 20 {
		c.send(get("a", "/"))
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	c.send(get("a", "/big"))
	// Read nothing until the proxy gives up on the write, then drain what
	// the sockets held: the connection must end long before the body does.
	time.Sleep(timeout + 700*time.Millisecond)
	_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 256<<10)
	var got int
	var err error
	for err == nil && got < total/2 {
		var n int
		n, err = c.c.Read(buf)
		got += n
	}
	if got >= total/2 {
		t.Fatalf("read %d bytes of a stalled response: the client timeout never fired", got)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after a stalled read (read %d bytes)", got)
	}
}

// BenchmarkDeadline compares pushing a socket's write deadline out on
// every call with the lazy push (go test -run '^$' -bench Deadline ./proxy).
func BenchmarkDeadline(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const timeout = 30 * time.Second
	b.Run("every", func(b *testing.B) {
		for b.Loop() {
			_ = c.SetWriteDeadline(time.Now().Add(timeout))
		}
	})
	b.Run("lazy", func(b *testing.B) {
		var l lazyDeadline
		for b.Loop() {
			if at, ok := l.arm(time.Now().Add(timeout), deadlineSlack(timeout)); ok {
				_ = c.SetWriteDeadline(at)
			}
		}
	})
}

// busyThenStall sends n requests back to back on one connection, as a
// busy client does (the proxy then keeps the read deadline it armed for
// the first of them), and then, after pause, sends stall, and returns when
// it did.
func busyThenStall(t *testing.T, addr string, n int, pause time.Duration, stall string) *rawConn {
	t.Helper()
	c := dialRaw(t, addr)
	for i := range n {
		c.send(get("a", "/"))
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	time.Sleep(pause)
	if stall != "" {
		c.send(stall)
	}
	return c
}

// TestRequestTimeoutAfterKeptReadDeadlines: the read deadlines a busy
// connection keeps instead of moving (see lingerConn.SetReadDeadline)
// neither cut a request head short nor let it take longer than timeout
// http-request: a head that stops halfway gets its 408 when the request
// timeout has passed since the head began, whether parking and the look
// at the socket are on or off.
func TestRequestTimeoutAfterKeptReadDeadlines(t *testing.T) {
	const timeout = 400 * time.Millisecond
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {})
	be := backendOf(t, BackendOptions{}, b.addr())
	for _, park := range []time.Duration{-1, 0} {
		for _, pause := range []time.Duration{0, 150 * time.Millisecond} {
			t.Run(fmt.Sprintf("park=%v/pause=%v", park >= 0, pause), func(t *testing.T) {
				_, addr := startFrontend(t, FrontendConfig{Default: be, ParkIdleAfter: park,
					Timeouts: Timeouts{HTTPRequest: timeout, KeepAlive: 5 * time.Second}})
				c := busyThenStall(t, addr, 30, pause, "GET / HTTP/1.1\r\nHost: a\r\n")
				start := time.Now()
				_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
				resp, err := http.ReadResponse(c.br, nil)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("no answer to a stalled head after %v: %v", took, err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestTimeout {
					t.Fatalf("stalled head answered %d, want 408", resp.StatusCode)
				}
				if took < timeout-20*time.Millisecond || took > timeout+600*time.Millisecond {
					t.Fatalf("stalled head answered after %v, timeout http-request %v", took, timeout)
				}
			})
		}
	}
}

// TestKeepAliveTimeoutAfterKeptReadDeadlines: a connection that was busy
// and then goes idle is closed when the keep-alive timeout has passed since
// its last response, not before, with parking on or off.
func TestKeepAliveTimeoutAfterKeptReadDeadlines(t *testing.T) {
	const keepAlive = 500 * time.Millisecond
	b := startBackend(t, "b", func(w http.ResponseWriter, r *http.Request) {})
	be := backendOf(t, BackendOptions{}, b.addr())
	for _, park := range []time.Duration{-1, 0} {
		t.Run(fmt.Sprintf("park=%v", park >= 0), func(t *testing.T) {
			_, addr := startFrontend(t, FrontendConfig{Default: be, ParkIdleAfter: park,
				Timeouts: Timeouts{KeepAlive: keepAlive}})
			c := busyThenStall(t, addr, 30, 0, "")
			start := time.Now()
			c.expectEOF()
			took := time.Since(start)
			if took < keepAlive-20*time.Millisecond || took > keepAlive+600*time.Millisecond {
				t.Fatalf("idle connection closed after %v, keep-alive timeout %v", took, keepAlive)
			}
		})
	}
}
