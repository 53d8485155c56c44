package proxyproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// logSink collects Logf lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func listen(t *testing.T, opts ListenerOptions) net.Listener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(inner, opts)
	t.Cleanup(func() { ln.Close() })
	return ln
}

func dial(t *testing.T, ln net.Listener, send []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if len(send) > 0 {
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func accept(t *testing.T, ln net.Listener) *Conn {
	t.Helper()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*Conn)
}

func TestListenerHeaders(t *testing.T) {
	tests := []struct {
		name       string
		required   bool
		send       []byte
		wantRemote string // "" means the socket's own peer address
		wantData   string
		wantErr    error
		// closeClient half-closes the client after sending.
		closeClient bool
	}{
		{name: "v1", required: true, send: []byte("PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\nhello"),
			wantRemote: "198.51.100.22:35646", wantData: "hello"},
		{name: "v2 with vpce", required: true,
			send: append(mustHex("0d0a0d0a000d0a515549540a 21 11 0026 cb007107 0a00010f 8b3e 0050 ea 0017 01"+
				"767063652d30313233343536373839616263646566 30"), "hello"...),
			wantRemote: "203.0.113.7:35646", wantData: "hello"},
		{name: "v2 nlb health check is LOCAL", required: true,
			send:     append(mustHex("0d0a0d0a000d0a515549540a 20 00 0000"), "GET /health HTTP/1.1\r\n"...),
			wantData: "GET /health HTTP/1.1\r\n"},
		{name: "missing header optional", send: []byte("GET / HTTP/1.1\r\n"), wantData: "GET / HTTP/1.1\r\n"},
		{name: "missing header required", required: true, send: []byte("GET / HTTP/1.1\r\n"), wantErr: ErrNoHeader},
		{name: "malformed", send: []byte("PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\nhello"), wantErr: ErrInvalid},
		{name: "truncated", required: true, send: []byte("PROXY TCP4 1.2.3.4"), closeClient: true, wantErr: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logSink
			ln := listen(t, ListenerOptions{Required: tt.required, ReadHeaderTimeout: 2 * time.Second, Logf: logs.logf})
			client := dial(t, ln, tt.send)
			if tt.closeClient {
				client.(*net.TCPConn).CloseWrite()
			}
			c := accept(t, ln)
			buf := make([]byte, 64)
			if tt.wantErr != nil {
				_, err := c.Read(buf)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Read err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(logs.String(), "closing connection from 127.0.0.1:") {
					t.Errorf("rejection not logged: %q", logs.String())
				}
				// The server closed its end: the client sees EOF or a reset.
				_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
				if _, err := client.Read(buf); err == nil {
					t.Error("client connection still open after rejection")
				} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Error("client connection not closed after rejection")
				}
				return
			}
			n, err := io.ReadAtLeast(c, buf, len(tt.wantData))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if got := string(buf[:n]); got != tt.wantData {
				t.Errorf("data = %q, want %q", got, tt.wantData)
			}
			want := tt.wantRemote
			if want == "" {
				want = client.LocalAddr().String()
			}
			if got := c.RemoteAddr().String(); got != want {
				t.Errorf("RemoteAddr = %s, want %s", got, want)
			}
			if got, want := c.LocalAddr().String(), ln.Addr().String(); got != want {
				t.Errorf("LocalAddr = %s, want %s", got, want)
			}
			if logs.String() != "" {
				t.Errorf("unexpected log: %q", logs.String())
			}
		})
	}
}

// A TCP health check connects and closes without a byte: Read reports EOF
// and nothing is logged, even when a header is required.
func TestListenerQuietOnEmptyConnection(t *testing.T) {
	var logs logSink
	ln := listen(t, ListenerOptions{Required: true, Logf: logs.logf})
	client := dial(t, ln, nil)
	client.Close()
	c := accept(t, ln)
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read = %v, want io.EOF", err)
	}
	if logs.String() != "" {
		t.Errorf("logged %q", logs.String())
	}
}

// A client that connects and sends nothing must not delay the others: Accept
// returns at once and the silent one times out on its own.
func TestListenerSlowClientDoesNotBlockAccept(t *testing.T) {
	var logs logSink
	ln := listen(t, ListenerOptions{Required: true, ReadHeaderTimeout: 300 * time.Millisecond, Logf: logs.logf})
	dial(t, ln, nil) // silent
	slow := accept(t, ln)
	slowErr := make(chan error, 1)
	go func() {
		_, err := slow.Read(make([]byte, 1))
		slowErr <- err
	}()

	start := time.Now()
	dial(t, ln, []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\nx"))
	fast := accept(t, ln)
	if got := fast.RemoteAddr().String(); got != "192.0.2.1:1000" {
		t.Errorf("RemoteAddr = %s", got)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("second connection took %v while the first was silent", d)
	}
	select {
	case err := <-slowErr:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("silent client: err = %v, want a timeout", err)
		}
		if !strings.Contains(err.Error(), "no complete header within 300ms") {
			t.Errorf("error does not explain the timeout: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("silent client never timed out")
	}
	if !strings.Contains(logs.String(), "no complete header") {
		t.Errorf("timeout not logged: %q", logs.String())
	}
}

// The header timeout must not clobber a read deadline the server set, and an
// earlier server deadline must win while the header is read.
func TestListenerDeadlines(t *testing.T) {
	ln := listen(t, ListenerOptions{ReadHeaderTimeout: 5 * time.Second})
	client := dial(t, ln, nil)
	c := accept(t, ln)
	if err := c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := c.Read(make([]byte, 1))
	if d := time.Since(start); err == nil || d > 2*time.Second {
		t.Fatalf("Read returned %v after %v; want the caller's 100ms deadline", err, d)
	}

	// After the handshake the caller's deadline is back in force.
	ln2 := listen(t, ListenerOptions{ReadHeaderTimeout: 50 * time.Millisecond})
	client = dial(t, ln2, []byte("PROXY UNKNOWN\r\n"))
	c = accept(t, ln2)
	if _, err := c.Header(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond) // longer than the header timeout
		client.Write([]byte("late"))
	}()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "late" {
		t.Fatalf("read after handshake: %q %v", buf, err)
	}
}

func TestListenerUntrustedPeerPassesThrough(t *testing.T) {
	ln := listen(t, ListenerOptions{Required: true, Trusted: func(a netip.Addr) bool {
		return a == netip.MustParseAddr("10.0.0.1")
	}})
	const forged = "PROXY TCP4 6.6.6.6 10.0.0.2 1 80\r\n"
	client := dial(t, ln, []byte(forged))
	c := accept(t, ln)
	buf := make([]byte, len(forged))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != forged {
		t.Fatalf("untrusted peer's bytes = %q, %v; want them untouched", buf, err)
	}
	if got, want := c.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr = %s, want the socket peer %s", got, want)
	}
	if h, err := c.Header(); h != nil || err != nil {
		t.Errorf("Header = %+v, %v", h, err)
	}
}

// io.Copy through WriteTo must deliver the bytes buffered with the header
// and then the rest of the stream.
func TestListenerWriteTo(t *testing.T) {
	ln := listen(t, ListenerOptions{Required: true})
	payload := bytes.Repeat([]byte("0123456789"), 10000)
	client := dial(t, ln, append([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 1000 80\r\n"), payload[:100]...))
	c := accept(t, ln)
	go func() {
		time.Sleep(20 * time.Millisecond)
		client.Write(payload[100:])
		client.Close()
	}()
	var got bytes.Buffer
	if _, err := io.Copy(&got, c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Fatalf("copied %d bytes, want %d identical", got.Len(), len(payload))
	}
	// ReadFrom writes to the client.
	ln2 := listen(t, ListenerOptions{})
	client2 := dial(t, ln2, nil)
	c2 := accept(t, ln2)
	if n, err := io.Copy(c2, strings.NewReader("pong")); err != nil || n != 4 {
		t.Fatalf("io.Copy to conn: %d %v", n, err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(client2, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q %v", buf, err)
	}
}

// net/http sees the PROXY source as the request's RemoteAddr.
func TestListenerWithHTTPServer(t *testing.T) {
	ln := listen(t, ListenerOptions{Required: true})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.RemoteAddr)
	}), ReadHeaderTimeout: 2 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	for _, tc := range []struct{ header, want string }{
		{"PROXY TCP4 198.51.100.22 203.0.113.7 35646 80\r\n", "198.51.100.22:35646"},
		{"PROXY TCP6 2001:db8::1 2001:db8::2 4000 443\r\n", "[2001:db8::1]:4000"},
	} {
		c := dial(t, ln, []byte(tc.header+"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(resp, []byte("HTTP/1.1 200 OK")) || !bytes.HasSuffix(resp, []byte(tc.want)) {
			t.Errorf("response %q, want 200 ending in %s", resp, tc.want)
		}
	}
}

// TestRemoteAddrDoesNotAllocate: fasthttp asks for the remote address on
// every request, so after the handshake it must be free.
func TestRemoteAddrDoesNotAllocate(t *testing.T) {
	ln := listen(t, ListenerOptions{Required: true})
	dial(t, ln, []byte("PROXY TCP4 203.0.113.7 10.0.0.1 51234 80\r\n"))
	c := accept(t, ln)
	if got := c.RemoteAddr().String(); got != "203.0.113.7:51234" {
		t.Fatalf("RemoteAddr = %s", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = c.RemoteAddr() }); n != 0 {
		t.Fatalf("RemoteAddr allocates %v times per call", n)
	}
}
