package proxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// batchedRawIO returns a client-side rawIO in batch mode.
func batchedRawIO(t testing.TB, c *net.TCPConn) *rawIO {
	x := clientRawIO(t, c)
	x.batch = batchFlusher()
	return x
}

// smallWindowPair is tcpPair with a small receive buffer on the client
// and a small send buffer on the server, so that the client, by not
// reading, soon stops the server's writes.
func smallWindowPair(t *testing.T) (srv, cli *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); accepted <- c }()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	srv, cli = s.(*net.TCPConn), c.(*net.TCPConn)
	_ = srv.SetWriteBuffer(4096)
	return srv, cli
}

// A client that stops reading fills the socket: the flusher's send is
// partial and a finisher sends the rest. Responses stay whole and in
// order, and the flusher keeps serving other connections meanwhile.
func TestBatchedResponsesToAStalledClient(t *testing.T) {
	srv, cli := smallWindowPair(t)
	x := batchedRawIO(t, srv)
	const n, size = 8, 12 << 10
	req := []byte("GET /pipelined\n") // 15 bytes
	if _, err := cli.Write(bytes.Repeat(req, n)); err != nil {
		t.Fatal(err)
	}
	_ = srv.SetDeadline(time.Now().Add(20 * time.Second))
	served := make(chan error, 1)
	go func() {
		buf := make([]byte, len(req))
		for i := range n {
			if _, err := io.ReadFull(x, buf); err != nil {
				served <- fmt.Errorf("request %d: %w", i, err)
				return
			}
			x.holdResponse()
			if _, err := x.Write(bytes.Repeat([]byte{byte('a' + i)}, size)); err != nil {
				served <- fmt.Errorf("response %d: %w", i, err)
				return
			}
		}
		served <- x.flush()
	}()

	// While the stalled client's responses wait, another connection's
	// held response goes out through the same flusher.
	time.Sleep(200 * time.Millisecond)
	osrv, ocli := tcpPair(t)
	y := batchedRawIO(t, osrv)
	y.holdResponse()
	y.Write([]byte("other response"))
	go func() {
		_ = osrv.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = y.Read(make([]byte, 10))
	}()
	if got := receivedWithin(ocli, 5*time.Second); string(got) != "other response" {
		t.Fatalf("other client got %q while one client stalled", got)
	}

	_ = cli.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, n*size)
	if _, err := io.ReadFull(cli, got); err != nil {
		t.Fatalf("client read: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	for i := range n {
		part := got[i*size : (i+1)*size]
		if bytes.Count(part, []byte{byte('a' + i)}) != size {
			t.Fatalf("response %d is not whole and in order: starts %q", i, part[:16])
		}
	}
}

// Through a frontend in batch mode: concurrent keep-alive clients and a
// pipelining one each get their own responses, in order.
func TestBatchWritesFrontend(t *testing.T) {
	be := startBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "answer to %s", r.URL.Path)
	})
	_, addr := startFrontend(t, FrontendConfig{
		Name: "batched", BatchWrites: true,
		Default: backendOf(t, BackendOptions{}, be.addr()),
	})

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for c := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer rc.Close()
			_ = rc.SetDeadline(time.Now().Add(20 * time.Second))
			buf := make([]byte, 4096)
			for i := range 50 {
				path := fmt.Sprintf("/c%d/r%d", c, i)
				if _, err := io.WriteString(rc, get("x", path)); err != nil {
					errs <- err
					return
				}
				want := "answer to " + path
				var got []byte
				for !bytes.HasSuffix(got, []byte(want)) {
					n, err := rc.Read(buf)
					if err != nil {
						errs <- fmt.Errorf("%s: %v after %q", path, err, got)
						return
					}
					got = append(got, buf[:n]...)
					if len(got) > 2048 {
						errs <- fmt.Errorf("%s: got %q", path, got)
						return
					}
				}
			}
		}()
	}

	rc := dialRaw(t, addr)
	rc.send(get("x", "/p1") + get("x", "/p2") + get("x", "/p3"))
	for _, p := range []string{"/p1", "/p2", "/p3"} {
		if _, body := rc.response("GET"); body != "answer to "+p {
			t.Fatalf("pipelined %s: got %q", p, body)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
