package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// backendReadBuffer is the read buffer of a backend connection. It also
// bounds the size of a response head, as HAProxy's 16 KiB tune.bufsize does.
const backendReadBuffer = 16 << 10

// backendReaders lends the read buffers of backend connections: one is
// attached to a connection while a request uses it and goes back when the
// connection is parked with nothing buffered. A parked connection holds no
// buffer, and the buffer a response lands in is the one the last response
// went through, still in cache, not one of as many as there are
// connections.
var backendReaders lifoPool[bufio.Reader]

// bconn is one connection to a backend server, owned by exactly one request
// at a time or parked in its server's pool.
type bconn struct {
	conn   net.Conn
	raw    *rawIO        // nil when conn offers no raw access
	br     *bufio.Reader // nil while parked
	wbuf   []byte
	srv    *Server
	idleAt atomic.Int64 // unix nanoseconds it was parked
	uses   int
	body   bodyReader
	dl     lazyDeadline // the read and write deadline, set together
}

// armDeadline makes the connection's read and write deadline no earlier
// than now+timeout (see lazyDeadline); timeout is positive (withDefaults).
func (c *bconn) armDeadline(now time.Time, timeout time.Duration) {
	if at, ok := c.dl.arm(now.Add(timeout), deadlineSlack(timeout)); ok {
		_ = c.conn.SetDeadline(at)
	}
}

// setDeadline, setReadDeadline and setWriteDeadline set a deadline as
// asked, leaving the lazily armed one unknown. Every deadline set on a
// backend connection goes through these or armDeadline, except a tunnel's
// own, set after setDeadline on a connection that is closed at its end.
func (c *bconn) setDeadline(t time.Time) {
	c.dl.forget()
	_ = c.conn.SetDeadline(t)
}

func (c *bconn) setReadDeadline(t time.Time) {
	c.dl.forget()
	_ = c.conn.SetReadDeadline(t)
}

func (c *bconn) setWriteDeadline(t time.Time) {
	c.dl.forget()
	_ = c.conn.SetWriteDeadline(t)
}

// attachReader gives the connection a read buffer.
func (c *bconn) attachReader() {
	var src io.Reader = c.conn
	if c.raw != nil {
		src = c.raw
	}
	if c.br = backendReaders.get(); c.br != nil {
		c.br.Reset(src)
	} else {
		c.br = bufio.NewReaderSize(src, backendReadBuffer)
	}
}

// detachReader returns the connection's read buffer, which holds nothing.
func (c *bconn) detachReader() {
	br := c.br
	c.br = nil
	br.Reset(nil)
	backendReaders.put(br)
}

// close closes the connection. A read buffer still attached is left to the
// collector: a streamed body may still hold it.
func (c *bconn) close() {
	_ = c.conn.Close()
}

// connPool holds a server's idle connections in a fixed array of slots that
// requests take and return with compare-and-swap: no lock, no allocation.
// Both ends scan from slot 0, so the most recently used connections are
// reused first and surplus ones age out at the high end (LIFO-like).
type connPool struct {
	slots []atomic.Pointer[bconn]
}

func (p *connPool) init(n int) { p.slots = make([]atomic.Pointer[bconn], n) }

func (p *connPool) get() *bconn {
	for i := range p.slots {
		if c := p.slots[i].Load(); c != nil && p.slots[i].CompareAndSwap(c, nil) {
			return c
		}
	}
	return nil
}

func (p *connPool) put(c *bconn, now int64) bool {
	c.idleAt.Store(now)
	for i := range p.slots {
		if p.slots[i].Load() == nil && p.slots[i].CompareAndSwap(nil, c) {
			return true
		}
	}
	return false
}

// closeIdle closes the pooled connections parked before cutoff (unix
// nanoseconds); 0 closes them all.
func (p *connPool) closeIdle(cutoff int64) int {
	n := 0
	for i := range p.slots {
		c := p.slots[i].Load()
		if c == nil || (cutoff != 0 && c.idleAt.Load() > cutoff) {
			continue
		}
		if p.slots[i].CompareAndSwap(c, nil) {
			c.close()
			n++
		}
	}
	return n
}

// Idle counts the pooled connections.
func (p *connPool) idle() int {
	n := 0
	for i := range p.slots {
		if p.slots[i].Load() != nil {
			n++
		}
	}
	return n
}

// IdleConns is the number of idle pooled connections to the server.
func (s *Server) IdleConns() int { return s.pool.idle() }

// acquire returns a pooled connection or dials a new one. reused says which.
func (s *Server) acquire(d *net.Dialer) (c *bconn, reused bool, err error) {
	if c = s.pool.get(); c != nil {
		s.Stats.ReusedConns.Add(1)
		c.attachReader()
		return c, true, nil
	}
	conn, err := d.DialContext(context.Background(), "tcp", s.Addr)
	if err != nil {
		return nil, false, err
	}
	s.Stats.NewConns.Add(1)
	c = &bconn{conn: conn, raw: newRawIO(conn), srv: s}
	c.attachReader()
	c.body.c = c
	return c, false, nil
}

// write sends p.
func (c *bconn) write(p []byte) (int, error) {
	if c.raw != nil {
		return c.raw.Write(p)
	}
	return c.conn.Write(p)
}

// send sends a request that is complete in p: with raw access, as part
// of reading the answer (see rawIO.sendThenRead), so p must stay untouched
// until the response head was read; sendFailed then tells a failed send
// from a failed read.
func (c *bconn) send(p []byte) error {
	if c.raw != nil && c.br.Buffered() == 0 {
		c.raw.sendThenRead(p)
		return nil
	}
	_, err := c.conn.Write(p)
	return err
}

func (c *bconn) sendFailed() bool { return c.raw != nil && c.raw.sendFailed() }

// release parks a connection for reuse, or closes it when it may not be
// reused: the server left the set, the backend asked to close, or the pool
// is full.
func (s *Server) release(c *bconn, reusable bool) {
	c.uses++
	// Bytes past the end of the response are not an answer to anything:
	// the connection's framing is lost.
	if !reusable || c.br.Buffered() > 0 || s.retired.Load() {
		c.close()
		return
	}
	// The buffer goes back before the connection does: once pooled, the
	// connection is another request's.
	c.detachReader()
	if !s.pool.put(c, time.Now().UnixNano()) {
		c.close()
		return
	}
	// A server retired while we parked: make sure nothing stays behind.
	if s.retired.Load() {
		s.pool.closeIdle(0)
	}
}

// bodyReader streams a backend response body to the client side. It frames
// by Content-Length, by chunked coding (RFC 9112 §7.1), or until the
// backend closes, and hands the connection back to the pool on Close once
// the body was read to its end.
type bodyReader struct {
	c         *bconn
	mode      int8 // bodyFixed, bodyChunked, bodyUntilClose
	done      bool
	reusable  bool
	remaining int64 // fixed: bytes left; chunked: bytes left in the chunk
	timeout   time.Duration
	// client is the client connection, whose write deadline is pushed out
	// as data flows (HAProxy's "timeout client" is an inactivity timeout).
	client        net.Conn
	clientTimeout time.Duration
	n             int64
}

const (
	bodyFixed int8 = iota
	bodyChunked
	bodyUntilClose
)

var errBadChunk = errors.New("malformed chunked body from backend")

func (r *bodyReader) start(mode int8, length int64, reusable bool, timeout time.Duration, client net.Conn, clientTimeout time.Duration) {
	r.mode, r.remaining, r.reusable = mode, length, reusable
	r.done = mode == bodyFixed && length == 0
	r.timeout, r.client, r.clientTimeout = timeout, client, clientTimeout
	r.n = 0
	if mode == bodyChunked {
		r.remaining = -1 // expect a chunk-size line first
	}
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	now := time.Now()
	r.c.setReadDeadline(now.Add(r.timeout))
	if r.client != nil {
		_ = r.client.SetWriteDeadline(now.Add(r.clientTimeout))
	}
	var n int
	var err error
	switch r.mode {
	case bodyFixed:
		if int64(len(p)) > r.remaining {
			p = p[:r.remaining]
		}
		n, err = r.c.br.Read(p)
		r.remaining -= int64(n)
		if r.remaining == 0 {
			r.done = true
			err = nil
		} else if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
	case bodyChunked:
		n, err = r.readChunked(p)
	default:
		n, err = r.c.br.Read(p)
		if err == io.EOF {
			r.done = true
			r.reusable = false
		}
	}
	r.n += int64(n)
	if r.done && n > 0 {
		return n, nil
	}
	if r.done && err == nil {
		err = io.EOF
	}
	return n, err
}

// readChunked decodes chunked transfer coding (RFC 9112 §7.1): a hex size
// line with optional extensions, the data, CRLF; a zero size ends the body,
// followed by optional trailer fields, which edgeproxy drops.
func (r *bodyReader) readChunked(p []byte) (int, error) {
	br := r.c.br
	if r.remaining < 0 {
		line, err := readLine(br)
		if err != nil {
			return 0, err
		}
		size, ok := parseChunkSize(line)
		if !ok {
			return 0, errBadChunk
		}
		if size == 0 {
			for {
				l, err := readLine(br)
				if err != nil {
					return 0, err
				}
				if len(l) == 0 {
					r.done = true
					return 0, io.EOF
				}
			}
		}
		r.remaining = size
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	n, err := br.Read(p)
	r.remaining -= int64(n)
	if r.remaining == 0 {
		if l, err := readLine(br); err != nil || len(l) != 0 {
			return n, errBadChunk
		}
		r.remaining = -1
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// readLine reads a CRLF-terminated line (a bare LF is accepted, as RFC 9112
// §2.2 allows a recipient to) without its terminator.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

func parseChunkSize(line []byte) (int64, bool) {
	var size int64
	digits := 0
	for _, c := range line {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t':
			// chunk extensions (and BWS before them) are ignored
			return size, digits > 0
		default:
			return 0, false
		}
		if digits == 15 {
			return 0, false // over 2^60: refuse rather than overflow
		}
		size = size<<4 | int64(v)
		digits++
	}
	return size, digits > 0
}

// Close ends the body: the connection goes back to the pool when the body
// was read to its end, otherwise it is closed (its framing is lost).
func (r *bodyReader) Close() error {
	c := r.c
	c.srv.Stats.BytesOut.Add(uint64(r.n))
	c.srv.Stats.Active.Add(-1)
	if r.done && r.reusable {
		c.setReadDeadline(time.Time{})
	}
	r.client = nil
	c.srv.release(c, r.done && r.reusable)
	return nil
}
