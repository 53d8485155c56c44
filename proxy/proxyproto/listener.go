package proxyproto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReadHeaderTimeout bounds the wait for a PROXY header when
// ListenerOptions.ReadHeaderTimeout is zero. Load balancers send the header
// with the first segment, so anything slower is not a load balancer.
const DefaultReadHeaderTimeout = 3 * time.Second

// ListenerOptions configures NewListener.
type ListenerOptions struct {
	// Required rejects (closes) connections that do not start with a
	// PROXY header. When false, such connections pass through untouched
	// and keep their socket addresses. Behind an NLB with proxy protocol
	// enabled, or a CLB TCP listener with ProxyProtocolPolicyType, set it:
	// a header is then always present, and a connection without one did
	// not come through the load balancer.
	Required bool

	// ReadHeaderTimeout bounds how long the first Read (or RemoteAddr, or
	// Header) waits for the header. Zero means DefaultReadHeaderTimeout;
	// negative means no limit. A read deadline set on the Conn by the
	// caller still applies if it is earlier.
	ReadHeaderTimeout time.Duration

	// Trusted, when set, is asked for each connection's socket peer
	// address; connections from untrusted peers are not parsed at all and
	// pass through as plain connections, so nobody outside the load
	// balancer's network can forge a client address. Nil trusts every peer.
	Trusted func(peer netip.Addr) bool

	// Logf receives one line per rejected connection (malformed header,
	// missing header when Required, timeout). Nil discards.
	Logf func(format string, args ...any)
}

// NewListener wraps inner so that accepted connections have their PROXY
// header stripped and RemoteAddr report the client address from it.
//
// Accept never reads from the network: it returns a *Conn at once, and the
// header is read the first time the connection's Read, RemoteAddr or Header
// is called, under ReadHeaderTimeout. Servers that call RemoteAddr in their
// accept loop would give up that property (fasthttp does so when
// Server.MaxConnsPerIP is set); net/http and fasthttp otherwise call it in
// the per-connection goroutine.
func NewListener(inner net.Listener, opts ListenerOptions) net.Listener {
	if opts.ReadHeaderTimeout == 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	return &listener{inner: inner, opts: opts}
}

type listener struct {
	inner net.Listener
	opts  ListenerOptions
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.inner.Accept()
	if err != nil {
		return nil, err
	}
	return &Conn{conn: c, opts: &l.opts}, nil
}

func (l *listener) Close() error   { return l.inner.Close() }
func (l *listener) Addr() net.Addr { return l.inner.Addr() }

// Conn is a connection accepted by a listener from NewListener.
type Conn struct {
	conn net.Conn
	opts *ListenerOptions

	once   sync.Once
	hdr    *Header  // set by handshake; nil when no header was present
	err    error    // set by handshake; the connection is closed
	source net.Addr // the header's source, built once (RemoteAddr runs per request)

	// buf holds bytes read past the header until they are consumed.
	buf   atomic.Pointer[bufio.Reader]
	bufMu sync.Mutex

	dlMu     sync.Mutex
	userDL   time.Time // the caller's read deadline
	headerDL time.Time // the handshake's deadline while it runs
}

var (
	_ net.Conn      = (*Conn)(nil)
	_ io.WriterTo   = (*Conn)(nil)
	_ io.ReaderFrom = (*Conn)(nil)
)

// Header returns the connection's PROXY header, reading it if that has not
// happened yet. It returns nil and no error for a connection that had no
// header (and Required is false) or whose peer is not Trusted.
func (c *Conn) Header() (*Header, error) {
	c.once.Do(c.handshake)
	return c.hdr, c.err
}

// NetConn returns the underlying connection, for socket options such as TCP
// keepalive.
func (c *Conn) NetConn() net.Conn { return c.conn }

func (c *Conn) handshake() {
	peer := c.conn.RemoteAddr()
	if c.opts.Trusted != nil {
		ap, ok := addrPort(peer)
		if !ok || !c.opts.Trusted(ap.Addr().Unmap()) {
			return
		}
	}
	c.dlMu.Lock()
	if c.opts.ReadHeaderTimeout > 0 {
		c.headerDL = time.Now().Add(c.opts.ReadHeaderTimeout)
	}
	_ = c.conn.SetReadDeadline(earlier(c.headerDL, c.userDL))
	c.dlMu.Unlock()

	br := bufio.NewReaderSize(c.conn, 256)
	h, err := ReadHeader(br)

	c.dlMu.Lock()
	c.headerDL = time.Time{}
	_ = c.conn.SetReadDeadline(c.userDL)
	c.dlMu.Unlock()

	switch {
	case err == nil:
		c.hdr = h
		if !h.Local {
			c.source = net.TCPAddrFromAddrPort(h.Source)
		}
	case errors.Is(err, ErrNoHeader) && !c.opts.Required:
		// Plain connection: everything peeked stays in br.
	case err == io.EOF:
		// Closed before sending a byte, as TCP health checks do: not
		// worth a log line.
		c.err = io.EOF
		_ = c.conn.Close()
		return
	default:
		if errors.Is(err, ErrNoHeader) {
			err = fmt.Errorf("%w, and one is required", ErrNoHeader)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("proxyproto: no complete header within %v: %w", c.opts.ReadHeaderTimeout, err)
		}
		c.err = err
		c.opts.Logf("proxyproto: closing connection from %s: %v", peer, err)
		_ = c.conn.Close()
		return
	}
	if br.Buffered() > 0 {
		c.buf.Store(br)
	}
}

// Read reads data after the header. The first call reads the header.
func (c *Conn) Read(p []byte) (int, error) {
	c.once.Do(c.handshake)
	if c.err != nil {
		return 0, c.err
	}
	if c.buf.Load() != nil {
		c.bufMu.Lock()
		if br := c.buf.Load(); br != nil {
			// Buffered() > 0 here, so this never touches the socket.
			n, err := br.Read(p)
			if br.Buffered() == 0 {
				c.buf.Store(nil)
			}
			c.bufMu.Unlock()
			return n, err
		}
		c.bufMu.Unlock()
	}
	return c.conn.Read(p)
}

// WriteTo lets io.Copy use the underlying connection's fast path (splice on
// Linux) once the bytes buffered during the handshake are delivered.
func (c *Conn) WriteTo(w io.Writer) (int64, error) {
	c.once.Do(c.handshake)
	if c.err != nil {
		return 0, c.err
	}
	var total int64
	c.bufMu.Lock()
	if br := c.buf.Load(); br != nil {
		b, _ := br.Peek(br.Buffered())
		n, err := w.Write(b)
		_, _ = br.Discard(n)
		total += int64(n)
		if br.Buffered() == 0 {
			c.buf.Store(nil)
		}
		if err != nil {
			c.bufMu.Unlock()
			return total, err
		}
	}
	c.bufMu.Unlock()
	n, err := io.Copy(w, readerOnly{c.conn})
	return total + n, err
}

// ReadFrom writes r to the connection, using the underlying fast path.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.conn}, r)
}

// Write writes to the connection. It does not wait for the header.
func (c *Conn) Write(p []byte) (int, error) { return c.conn.Write(p) }

// Close closes the connection.
func (c *Conn) Close() error { return c.conn.Close() }

// LocalAddr returns the socket's local address (not the header's
// destination, which is in Header().Destination). It does not block.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the client address from the PROXY header, or the
// socket's peer address for LOCAL/UNKNOWN headers, plain connections and
// failed handshakes. The first call may wait for the header.
func (c *Conn) RemoteAddr() net.Addr {
	c.once.Do(c.handshake)
	if c.source != nil {
		return c.source
	}
	return c.conn.RemoteAddr()
}

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.conn.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline. While the header is being read the
// earlier of it and the header deadline applies.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dlMu.Lock()
	defer c.dlMu.Unlock()
	c.userDL = t
	return c.conn.SetReadDeadline(earlier(c.headerDL, t))
}

// SetWriteDeadline sets the write deadline.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

// earlier returns the earlier of two deadlines, the zero time meaning none.
func earlier(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

func addrPort(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort(), true
	case interface{ AddrPort() netip.AddrPort }:
		return a.AddrPort(), true
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}

type readerOnly struct{ io.Reader }
type writerOnly struct{ io.Writer }
