package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { a.Close(); r.c.Close() })
	return a.(*net.TCPConn), r.c.(*net.TCPConn)
}

// clientRawIO returns a rawIO set up as the frontend sets it up.
func clientRawIO(t testing.TB, c *net.TCPConn) *rawIO {
	x := newRawIO(c)
	if x == nil {
		t.Fatal("no raw access to a TCP connection")
	}
	x.deferWrites, x.stashReads = true, true
	return x
}

// received reports whether c has bytes to read within d, and reads them.
func receivedWithin(c net.Conn, d time.Duration) []byte {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	n, _ := c.Read(buf)
	_ = c.SetReadDeadline(time.Time{})
	return buf[:n]
}

// In batch mode the flusher sends the held response once the read began.
func TestRawIOHeldResponseGoesOutWithTheNextRead(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) { heldResponseGoesOutWithTheNextRead(t, batch) })
	}
}

func heldResponseGoesOutWithTheNextRead(t *testing.T, batch bool) {
	srv, cli := tcpPair(t)
	x := clientRawIO(t, srv)
	if batch {
		x.batch = batchFlusher()
	}

	x.holdResponse()
	if n, err := x.Write([]byte("response 1")); n != 10 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := receivedWithin(cli, 50*time.Millisecond); len(got) != 0 {
		t.Fatalf("held response sent before the next read: %q", got)
	}
	done := make(chan []byte)
	go func() {
		// The proxy's read sends the response; the client answers it
		// with the next request.
		got := receivedWithin(cli, 5*time.Second)
		_, _ = cli.Write([]byte("GET /next HTTP/1.1\r\n\r\n"))
		done <- got
	}()
	// fasthttp reads one byte, then the rest: the rest comes from the
	// stash without another system call.
	var one [1]byte
	if n, err := x.Read(one[:]); n != 1 || err != nil || one[0] != 'G' {
		t.Fatalf("Read = %d, %v, %q", n, err, one[:n])
	}
	if got := <-done; string(got) != "response 1" {
		t.Fatalf("client got %q", got)
	}
	if x.stash == nil {
		t.Fatal("the rest of the request was not read ahead")
	}
	rest := make([]byte, 100)
	n, err := x.Read(rest)
	if err != nil || string(rest[:n]) != "ET /next HTTP/1.1\r\n\r\n" {
		t.Fatalf("Read = %q, %v", rest[:n], err)
	}
	if x.stash != nil {
		t.Fatal("stash kept after it was drained")
	}
}

func TestRawIOStreamedWritesAreNotHeld(t *testing.T) {
	srv, cli := tcpPair(t)
	x := clientRawIO(t, srv)
	// Without holdResponse (a streamed body), every write goes out at once.
	for _, chunk := range []string{"chunk 1", "chunk 2"} {
		if _, err := x.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
		if got := receivedWithin(cli, 5*time.Second); string(got) != chunk {
			t.Fatalf("client got %q, want %q", got, chunk)
		}
	}
	// A held write followed by another write (a response longer than one
	// buffer) goes out first, in order.
	x.holdResponse()
	x.Write([]byte("head+"))
	x.Write([]byte("more body"))
	var got []byte
	for len(got) < len("head+more body") {
		b := receivedWithin(cli, 5*time.Second)
		if len(b) == 0 {
			break
		}
		got = append(got, b...)
	}
	if string(got) != "head+more body" {
		t.Fatalf("client got %q", got)
	}
}

func TestRawIOHeldResponseGoesOutOnClose(t *testing.T) {
	srv, cli := tcpPair(t)
	lc := &lingerConn{TCPConn: srv, raw: clientRawIO(t, srv)}
	lc.holdResponse()
	if _, err := lc.Write([]byte("last response")); err != nil {
		t.Fatal(err)
	}
	go lc.Close()
	got, err := io.ReadAll(cli)
	if err != nil || string(got) != "last response" {
		t.Fatalf("client got %q, %v", got, err)
	}
}

func TestRawIOHeldResponseToAGoneClient(t *testing.T) {
	srv, cli := tcpPair(t)
	x := clientRawIO(t, srv)
	_ = cli.SetLinger(0)
	cli.Close() // reset
	time.Sleep(20 * time.Millisecond)
	x.holdResponse()
	x.Write([]byte("nobody reads this"))
	_ = srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := x.Read(make([]byte, 10))
	if n != 0 || err == nil {
		t.Fatalf("Read = %d, %v; want an error", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("Read waited for its deadline instead of failing: %v", err)
	}
}

func TestRawIOSendThenReadLargerThanTheSocketBuffer(t *testing.T) {
	a, b := tcpPair(t)
	// A small send buffer makes the send partial. (Shrinking the peer's
	// receive buffer after the handshake would stall TCP itself.)
	_ = a.SetWriteBuffer(4 << 10)
	x := newRawIO(a)
	req := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	var wg sync.WaitGroup
	wg.Add(1)
	var got []byte
	go func() {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for len(got) < len(req) {
			n, err := b.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				return
			}
		}
		b.Write([]byte("answer"))
	}()
	x.sendThenRead(req)
	_ = a.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 100)
	n, err := x.Read(buf)
	if err != nil {
		b.Close()
	}
	wg.Wait()
	if err != nil || string(buf[:n]) != "answer" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if x.sendFailed() || !bytes.Equal(got, req) {
		t.Fatalf("backend got %d bytes intact=%v, want %d", len(got), bytes.Equal(got, req), len(req))
	}
}

func TestRawIOSendThenReadToAClosedPeer(t *testing.T) {
	a, b := tcpPair(t)
	_ = b.SetLinger(0)
	b.Close()
	time.Sleep(20 * time.Millisecond)
	x := newRawIO(a)
	x.sendThenRead([]byte("GET / HTTP/1.1\r\n\r\n"))
	_ = a.SetDeadline(time.Now().Add(5 * time.Second))
	n, err := x.Read(make([]byte, 10))
	if n != 0 || err == nil {
		t.Fatalf("Read = %d, %v; want an error", n, err)
	}
	if !x.sendFailed() {
		t.Fatalf("send to a reset connection not reported as a send failure: %v", err)
	}
}

func TestRawIOReadDeadline(t *testing.T) {
	a, _ := tcpPair(t)
	x := clientRawIO(t, a)
	_ = a.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := x.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read after the deadline = %v, want a timeout", err)
	}
}

func TestRawIOPlainAllowsConcurrentUse(t *testing.T) {
	srv, cli := tcpPair(t)
	x := clientRawIO(t, srv)
	x.holdResponse()
	x.Write([]byte("101 head"))
	if err := x.plain(); err != nil {
		t.Fatal(err)
	}
	if got := receivedWithin(cli, 5*time.Second); string(got) != "101 head" {
		t.Fatalf("client got %q", got)
	}
	// Both directions at once, as a tunnel does; -race checks the rest.
	const rounds = 200
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range rounds {
			x.holdResponse()
			if _, err := x.Write([]byte("d")); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1)
		for range rounds {
			if _, err := io.ReadFull(x, buf); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() { _, _ = cli.Write(bytes.Repeat([]byte("u"), rounds)) }()
	got, _ := io.ReadAll(io.LimitReader(cli, rounds))
	wg.Wait()
	if len(got) != rounds {
		t.Fatalf("client got %d bytes, want %d", len(got), rounds)
	}
}

// TestRawIOZeroAllocs guards the client side of the hot path: holding a
// response, sending it with the read of the next request (or from the
// flusher, in batch mode) and reading that request through the stash
// allocate nothing.
func TestRawIOZeroAllocs(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) { rawIOZeroAllocs(t, batch) })
	}
}

func rawIOZeroAllocs(t *testing.T, batch bool) {
	srv, cli := tcpPair(t)
	x := clientRawIO(t, srv)
	if batch {
		x.batch = batchFlusher()
	}
	resp := bytes.Repeat([]byte("r"), 850)
	req := []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := io.ReadFull(cli, buf[:len(resp)]); err != nil {
				return
			}
			if _, err := cli.Write(req); err != nil {
				return
			}
		}
	}()
	_, _ = cli.Write(req)
	one := make([]byte, 1)
	rest := make([]byte, 4096)
	cycle := func() {
		if _, err := x.Read(one); err != nil {
			t.Fatal(err)
		}
		if n, err := x.Read(rest); err != nil || n != len(req)-1 {
			t.Fatalf("Read = %d, %v", n, err)
		}
		x.holdResponse()
		if _, err := x.Write(resp); err != nil {
			t.Fatal(err)
		}
	}
	cycle()
	if a := testing.AllocsPerRun(200, cycle); a != 0 {
		t.Fatalf("%.1f allocations per request, want 0", a)
	}
}

// A read that sends a response waits for the next request without
// trying the socket first. Requests a pipelining client sent before that
// read began must still be answered: one sent while the previous was at
// the backend, and a burst larger than one read. Parking is off, so that
// nothing but the reads themselves can pick them up.
func TestPipelinedRequestsAreNotMissed(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			be := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					time.Sleep(20 * time.Millisecond)
				}
				fmt.Fprintf(w, "answer to %s", r.URL.Path)
			})
			_, addr := startFrontend(t, FrontendConfig{
				Name: "f", BatchWrites: batch, ParkIdleAfter: -1,
				Default: backendOf(t, BackendOptions{}, be.addr()),
			})
			rc := dialRaw(t, addr)
			rc.c.SetDeadline(time.Now().Add(3 * time.Second))
			rc.send(get("x", "/slow"))
			time.Sleep(5 * time.Millisecond)
			rc.send(get("x", "/next"))
			for _, p := range []string{"/slow", "/next"} {
				if _, body := rc.response("GET"); body != "answer to "+p {
					t.Fatalf("%s: got %q", p, body)
				}
			}

			var burst strings.Builder
			const n = 100 // about 7 KiB, more than one read takes
			for i := range n {
				burst.WriteString(get("x", fmt.Sprintf("/burst/%03d", i)))
			}
			rc.send(burst.String())
			for i := range n {
				want := fmt.Sprintf("answer to /burst/%03d", i)
				if _, body := rc.response("GET"); body != want {
					t.Fatalf("burst response %d: got %q, want %q", i, body, want)
				}
			}
		})
	}
}

// A read that filled its buffer may have left bytes in the socket: the
// next read after a held response tries the socket before it waits.
func TestRawIOReadAfterAFullReadTriesTheSocket(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			srv, cli := tcpPair(t)
			x := clientRawIO(t, srv)
			if batch {
				x.batch = batchFlusher()
			}
			sent := bytes.Repeat([]byte("p"), stashSize+1000)
			if _, err := cli.Write(sent); err != nil {
				t.Fatal(err)
			}
			_ = srv.SetReadDeadline(time.Now().Add(2 * time.Second))
			got := make([]byte, stashSize)
			waitFor(t, 2*time.Second, "the burst to arrive", func() bool {
				n, _ := unreadInput(x.rc)
				return n == len(sent)
			})
			if _, err := io.ReadFull(x, got[:1]); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(x, got[1:]); err != nil {
				t.Fatal(err)
			}
			x.holdResponse()
			x.Write([]byte("response"))
			n, err := x.Read(got)
			if err != nil || n != 1000 {
				t.Fatalf("Read after the held response = %d, %v; want the 1000 bytes left in the socket", n, err)
			}
			if r := receivedWithin(cli, 5*time.Second); string(r) != "response" {
				t.Fatalf("client got %q", r)
			}
		})
	}
}
