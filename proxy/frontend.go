package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy/accesslog"
	"github.com/edgeproxy/edgeproxy/proxy/proxyproto"
	"github.com/valyala/fasthttp"
)

// FrontendConfig describes one HTTP frontend.
type FrontendConfig struct {
	Name    string
	Routes  []Route
	Default *Backend // the defaultBackend; nil answers 503 when no rule matches
	// Port is the frontend's port as X-Forwarded-Port shows it.
	Port     int
	TLS      bool
	Timeouts Timeouts
	// MaxConns bounds concurrent client connections (HAProxy maxconn);
	// 0 means 10,000, Edge-LB's per-frontend default.
	MaxConns int
	// MaxRequestsPerConn closes a client connection (politely) after that
	// many requests; 0 means no limit.
	MaxRequestsPerConn int
	// Linger bounds the lingering read after edgeproxy half-closes a client
	// connection; 0 means 2 s.
	Linger time.Duration
	// ParkIdleAfter is how long a keep-alive connection waits for its next
	// request in a goroutine of its own before it is parked: held by one
	// epoll set with no goroutine or buffer until the request arrives
	// (Linux). 0 means DefaultParkIdleAfter; negative never parks.
	ParkIdleAfter time.Duration
	// KeepBuffersWhileIdle keeps a connection's 16 KiB buffers while it
	// waits for its next request. By default they go back to a shared pool,
	// which keeps 10,000 idle keep-alive connections cheap.
	KeepBuffersWhileIdle bool
	// BatchWrites sends the responses that are whole in memory from one
	// goroutine, in a batch per round of the Go scheduler, instead of from
	// each connection's goroutine as it finishes (see flusher). It pays
	// with GOMAXPROCS=1 and costs with more: BatchWritesByDefault says.
	BatchWrites bool
	// MaxHeaderSize bounds a request head (request line and header
	// fields); larger ones get 431. It is the size of each connection's
	// read buffer. 0 means DefaultMaxHeaderSize.
	MaxHeaderSize int
	// AcceptProxy requires a PROXY protocol header (v1 or v2) on every
	// connection (HAProxy's "accept-proxy"); the address it carries is the
	// client's for X-Forwarded-For, logs and "source" balancing.
	AcceptProxy bool
	// ProxyHeaderTimeout bounds the wait for that header; 0 means 3 s.
	ProxyHeaderTimeout time.Duration
	// TrustForwardedFor lists the networks of HTTP load balancers (ALB, CLB
	// HTTP listeners) whose X-Forwarded-For is believed: for requests from
	// them the client is the address that balancer appended, for "source"
	// balancing and the access log.
	TrustForwardedFor []netip.Prefix
	// Logf logs connection-level errors; nil discards them.
	Logf func(format string, args ...any)
	// AccessLog gets one line per request and per upgraded tunnel; nil
	// logs nothing. Frontends may share one; its owner closes it after
	// the frontends' Shutdown.
	AccessLog *accesslog.Logger
}

// BatchWritesByDefault reports whether BatchWrites pays here: when the
// Go scheduler has one P.
func BatchWritesByDefault() bool { return runtime.GOMAXPROCS(0) == 1 }

// DefaultParkIdleAfter is the default ParkIdleAfter: long enough that a
// client sending requests back to back never waits parked, short enough
// that idle connections do not pile up goroutines.
const DefaultParkIdleAfter = 250 * time.Millisecond

// DefaultMaxHeaderSize is the default bound on a request head: 16 KiB,
// HAProxy's tune.bufsize (HAProxy accepts about 15 KiB of it, less
// tune.maxrewrite).
const DefaultMaxHeaderSize = 16 << 10

// FrontendStats are a frontend's counters.
type FrontendStats struct {
	Conns    atomic.Int64  // open client connections
	Parked   atomic.Int64  // of which parked while idle (see ParkIdleAfter)
	Accepted atomic.Uint64 // client connections accepted
	NoRoute  atomic.Uint64 // requests no rule matched, without default
	Refused  atomic.Uint64 // requests refused for their framing
	Tunnels  atomic.Int64  // open upgraded tunnels
	Requests atomic.Uint64 // requests answered, by anyone
	// Responses counts the responses sent, by status class: other, 1xx..5xx.
	Responses [6]atomic.Uint64
}

// Frontend is one HTTP listener and its routing.
type Frontend struct {
	Name      string
	router    *router
	server    *fasthttp.Server
	timeouts  Timeouts
	portBytes []byte
	tls       bool
	linger    time.Duration
	parkAfter time.Duration
	parker    *parker // nil: idle connections are never parked
	batch     *flusher
	logf      func(string, ...any)
	// closing makes every response say "Connection: close" (CloseLazily).
	closing     atomic.Bool
	acceptProxy bool
	proxyWait   time.Duration
	trusted     []netip.Prefix
	accessLog   *accesslog.Logger
	Stats       FrontendStats
}

// NewFrontend builds a frontend; Serve starts it.
func NewFrontend(cfg FrontendConfig) (*Frontend, error) {
	r, err := newRouter(cfg.Routes, cfg.Default)
	if err != nil {
		return nil, err
	}
	t := cfg.Timeouts.withDefaults()
	f := &Frontend{
		Name:      cfg.Name,
		router:    r,
		timeouts:  t,
		portBytes: strconv.AppendInt(nil, int64(cfg.Port), 10),
		tls:       cfg.TLS,
		linger:    cfg.Linger,
		logf:      cfg.Logf,

		acceptProxy: cfg.AcceptProxy,
		proxyWait:   cfg.ProxyHeaderTimeout,
		trusted:     cfg.TrustForwardedFor,
		accessLog:   cfg.AccessLog,
	}
	if f.linger <= 0 {
		f.linger = 2 * time.Second
	}
	f.parkAfter = cfg.ParkIdleAfter
	if f.parkAfter == 0 {
		f.parkAfter = DefaultParkIdleAfter
	}
	if f.parkAfter > 0 && parkingSupported {
		f.parker = newParker(f)
	}
	if cfg.BatchWrites {
		f.batch = batchFlusher()
	}
	if f.logf == nil {
		f.logf = func(string, ...any) {}
	}
	maxConns := cfg.MaxConns
	if maxConns <= 0 {
		maxConns = 10000
	}
	maxHead := cfg.MaxHeaderSize
	if maxHead <= 0 {
		maxHead = DefaultMaxHeaderSize
	}
	f.server = &fasthttp.Server{
		Handler:                       f.handle,
		ErrorHandler:                  f.parseError,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		StreamRequestBody:             true,
		MaxRequestBodySize:            maxBufferedRequestBody,
		ReadBufferSize:                maxHead,
		WriteBufferSize:               16 << 10,
		ReadTimeout:                   t.HTTPRequest,
		WriteTimeout:                  t.Client,
		IdleTimeout:                   t.KeepAlive,
		MaxRequestsPerConn:            cfg.MaxRequestsPerConn,
		Concurrency:                   maxConns,
		CloseOnShutdown:               true,
		ReduceMemoryUsage:             !cfg.KeepBuffersWhileIdle,
		Logger:                        fasthttpLogger{f},
		ConnState: func(c net.Conn, st fasthttp.ConnState) {
			// A parked connection leaves the server and comes back to it
			// (ServeConn) without being closed or accepted again.
			switch st {
			case fasthttp.StateNew:
				if lc := lingerConnOf(c); lc != nil && lc.resumed.Load() > 0 {
					lc.resumed.Add(-1)
					return
				}
				f.Stats.Conns.Add(1)
				f.Stats.Accepted.Add(1)
			case fasthttp.StateClosed, fasthttp.StateHijacked:
				if lc := lingerConnOf(c); lc != nil && lc.parkedAway.Load() > 0 {
					lc.parkedAway.Add(-1)
					return
				}
				f.Stats.Conns.Add(-1)
			}
		},
		// Workers whose connection was parked should not keep their
		// stacks long.
		MaxIdleWorkerDuration: 2 * time.Second,
		// The request time is read only when asked for (the access log).
		LazyRequestTime: true,
	}
	return f, nil
}

type fasthttpLogger struct{ f *Frontend }

func (l fasthttpLogger) Printf(format string, args ...any) { l.f.logf(format, args...) }

// parseError answers requests the HTTP parser refused: malformed or
// ambiguous framing and invalid fields get 400 (RFC 9112 §6.3), an
// oversized head 431, a body above limits 413, a client too slow to send
// its head 408. The connection is closed after the answer.
func (f *Frontend) parseError(ctx *fasthttp.RequestCtx, err error) {
	f.Stats.Refused.Add(1)
	f.Stats.Requests.Add(1)
	status := fasthttp.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.As(err, &small):
		status = fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = fasthttp.StatusRequestEntityTooLarge
	case isTimeout(err):
		status = fasthttp.StatusRequestTimeout
	}
	writeError(ctx, status)
	ctx.SetConnectionClose()
	f.Stats.Responses[statusClass(status)].Add(1)
	f.logBadRequest(ctx, status)
}

// Serve accepts connections on ln until Shutdown.
func (f *Frontend) Serve(ln net.Listener) error {
	ln = lingerListener{Listener: ln, f: f}
	if f.acceptProxy {
		ln = proxyproto.NewListener(ln, proxyproto.ListenerOptions{
			Required: true, ReadHeaderTimeout: f.proxyWait, Logf: f.logf,
		})
		ln = outerListener{ln}
	}
	err := f.server.Serve(ln)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// CloseLazily makes every further response carry "Connection: close", so
// clients leave one by one after their next request instead of having idle
// connections cut. It is the step between deregistration from a load
// balancer and Shutdown.
func (f *Frontend) CloseLazily() { f.closing.Store(true) }

// Shutdown stops accepting, lets requests in flight finish (their responses
// carry "Connection: close"), closes idle connections with a half-close and
// lingering read, and returns when all are gone or ctx ends.
func (f *Frontend) Shutdown(ctx context.Context) error {
	if f.parker != nil {
		f.parker.closeAll()
	}
	return f.server.ShutdownWithContext(ctx)
}

// lingerListener wraps accepted connections so that closing one is polite.
type lingerListener struct {
	net.Listener
	f *Frontend
}

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		lc := &lingerConn{TCPConn: tc, raw: newRawIO(tc), f: l.f}
		lc.outer = lc
		if l.f != nil {
			lc.wslack = deadlineSlack(l.f.timeouts.Client)
		}
		if lc.raw != nil {
			lc.raw.deferWrites, lc.raw.stashReads = true, true
			if l.f != nil {
				lc.raw.batch = l.f.batch
			}
		}
		return lc, nil
	}
	return c, nil
}

// lingerConn closes with a half-close (FIN) and then reads and discards
// what the peer still sends, until it closes too or linger passes. Closing
// a socket with unread data makes the kernel send a reset, which can
// destroy a response the client has not read yet; lingering avoids that.
type lingerConn struct {
	*net.TCPConn
	raw    *rawIO
	f      *Frontend
	outer  net.Conn // what the server serves: c, or a wrapper of c
	closed atomic.Bool

	// Parking (see parker); owned by the serving goroutine.
	idleUntil time.Time // the keep-alive deadline of the idle wait
	parkable  bool      // the read deadline is the parking one
	responded bool      // the handler answered and nothing was read since
	// looking: the read deadline is lookAfter, and waitUntil the one to
	// set when it passes (see SetReadDeadline).
	looking   bool
	waitUntil time.Time
	park      atomic.Bool
	// peerDone: the client's last request said Connection: close.
	peerDone atomic.Bool
	parkedFd int32 // the parker's, under its lock
	heapIdx  int   // the parker's, under its lock
	// resumed and parkedAway count server state changes that are
	// parking, not connections opening and closing.
	resumed, parkedAway atomic.Int32
	// wdl is the write deadline, pushed out lazily by wslack.
	wdl    lazyDeadline
	wslack time.Duration
	// The read deadline, owned by the serving goroutine while writes are
	// held (see SetReadDeadline): rarmed is the one set on the socket
	// (unix nanoseconds, 0: none), rwant the later one the reads are
	// under when the socket's was kept (0: the socket's).
	rarmed, rwant int64
}

// errParked ends fasthttp's wait for the next request on a connection
// that is being parked. fasthttp ends such a wait quietly.
var errParked = errors.New("idle connection parked")

// Read and Write go through rawIO: a response is sent as the read of the
// next request begins, and that request is read in one system call.
func (c *lingerConn) Read(p []byte) (int, error) {
	if c.raw == nil {
		return c.TCPConn.Read(p)
	}
	c.responded = false
	n, err := c.raw.Read(p)
	for c.rwant != 0 && n == 0 && err != nil && isTimeout(err) {
		// The deadline kept on the socket came before the one the read is
		// under: set that one and read on.
		want := c.rwant
		if time.Now().UnixNano() >= want {
			c.rwant = 0
			break
		}
		if err := c.armRead(want); err != nil {
			return 0, err
		}
		n, err = c.raw.Read(p)
	}
	if c.looking {
		c.looking = false
		if n == 0 && err != nil && isTimeout(err) {
			// No request yet: look at the socket once, in case one came
			// before the response went out (see rawIO.lookOnce), then
			// wait out the rest.
			if err := c.armRead(c.waitUntil.UnixNano()); err != nil {
				return 0, err
			}
			c.raw.lookOnce = true
			n, err = c.raw.Read(p)
		}
	}
	if c.parkable {
		c.parkable = false
		if n == 0 && err != nil && isTimeout(err) && time.Now().Before(c.idleUntil) {
			c.park.Store(true)
			return 0, errParked
		}
	}
	return n, err
}

// SetReadDeadline is how fasthttp starts the keep-alive wait for the
// next request (the first read deadline set after the handler answered):
// when parking is on, the wait is cut at ParkIdleAfter instead.
//
// That wait first ends after lookAfter, for one look at the socket: the
// read that sends the response waits for the next request without trying
// the socket first, and would not see one a pipelining client sent
// before (see rawIO.lookOnce). A client that sends its next request
// within lookAfter, as busy ones do, never needs the look.
//
// fasthttp sets two read deadlines per request, the keep-alive wait's and
// then, at the request's first byte, the request's (timeout
// http-request); each set moves a runtime timer. While writes are held
// (fasthttp's serving loop, whose reads all come through Read), a
// deadline already on the socket that comes no later than the one asked
// for is kept when it is not much earlier (the request's deadline, seconds
// away, keeps the wait's, and the next wait keeps the last one's while it
// is less than half a wait old): Read then sets the one asked for if the
// kept one passes first. A busy connection so moves its timer about twice
// per lookAfter instead of twice per request.
func (c *lingerConn) SetReadDeadline(t time.Time) error {
	c.parkable, c.looking = false, false
	if c.raw == nil || !c.raw.deferWrites || t.IsZero() {
		return c.setReadDeadline(t)
	}
	if !c.responded {
		return c.lazyRead(t.UnixNano(), 0)
	}
	now := time.Now()
	wait := t
	if c.f != nil && c.f.parker != nil {
		if at := now.Add(c.f.parkAfter); at.Before(t) {
			c.idleUntil, c.parkable = t, true
			wait = at
		}
	}
	if at := now.Add(lookAfter); !c.raw.pipelines && at.Before(wait) {
		c.looking, c.waitUntil = true, wait
		wait = at
	}
	w := wait.UnixNano()
	return c.lazyRead(w, w-wait.Sub(now).Nanoseconds()/2)
}

// lazyRead makes reads end at want, keeping the socket's deadline when it
// comes no later and no earlier than early.
func (c *lingerConn) lazyRead(want, early int64) error {
	if a := c.rarmed; a != 0 && a <= want && a >= early {
		c.rwant = want
		if a == want {
			c.rwant = 0
		}
		return nil
	}
	return c.armRead(want)
}

// armRead sets the socket's read deadline to at (unix nanoseconds).
func (c *lingerConn) armRead(at int64) error {
	c.rarmed, c.rwant = at, 0
	return c.TCPConn.SetReadDeadline(time.Unix(0, at))
}

// setReadDeadline sets the socket's read deadline to t, exactly.
func (c *lingerConn) setReadDeadline(t time.Time) error {
	c.readDeadlineIs(t)
	return c.TCPConn.SetReadDeadline(t)
}

// readDeadlineIs records that the socket's read deadline is set to t.
func (c *lingerConn) readDeadlineIs(t time.Time) {
	c.rarmed, c.rwant = 0, 0
	if !t.IsZero() {
		c.rarmed = t.UnixNano()
	}
}

// exactRead sets on the socket the read deadline the reads are under, for
// reads that do not come through Read.
func (c *lingerConn) exactRead() error {
	if c.rwant == 0 {
		return nil
	}
	return c.armRead(c.rwant)
}

// lookAfter is how long the wait for a next request goes before one look
// at the socket: it bounds the delay of a request a pipelining client
// sent before the response to its previous one went out, the first time
// it does.
const lookAfter = 100 * time.Millisecond

// SetWriteDeadline is set for every response (fasthttp's WriteTimeout,
// the client timeout): it moves only when the armed one is more than
// wslack later than t, or earlier (see lazyDeadline).
func (c *lingerConn) SetWriteDeadline(t time.Time) error {
	if t.IsZero() {
		c.wdl.forget()
		return c.TCPConn.SetWriteDeadline(t)
	}
	if at, ok := c.wdl.arm(t, c.wslack); ok {
		return c.TCPConn.SetWriteDeadline(at)
	}
	return nil
}

func (c *lingerConn) SetDeadline(t time.Time) error {
	c.wdl.forget()
	c.readDeadlineIs(t)
	return c.TCPConn.SetDeadline(t)
}

// resume hands a parked connection whose next request arrived back to
// the server.
func (c *lingerConn) resume() {
	_ = c.setReadDeadline(time.Time{})
	c.resumed.Add(1)
	err := c.f.server.ServeConn(c.outer)
	if errors.Is(err, fasthttp.ErrConcurrencyLimit) {
		// Refused (503) and closed before the server saw it open.
		c.resumed.Add(-1)
		c.f.Stats.Conns.Add(-1)
	}
}

func (c *lingerConn) Write(p []byte) (int, error) {
	if c.raw == nil {
		return c.TCPConn.Write(p)
	}
	return c.raw.Write(p)
}

// ReadFrom, WriteTo and CloseWrite, which *net.TCPConn would serve past
// rawIO, first send what rawIO holds or hand over what it read ahead.
func (c *lingerConn) ReadFrom(r io.Reader) (int64, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.TCPConn.ReadFrom(r)
}

func (c *lingerConn) WriteTo(w io.Writer) (int64, error) {
	if err := c.exactRead(); err != nil {
		return 0, err
	}
	var n int64
	if c.raw != nil && c.raw.stash != nil {
		var buf [stashSize]byte
		m, _ := c.raw.Read(buf[:])
		k, err := w.Write(buf[:m])
		if n = int64(k); err != nil {
			return n, err
		}
	}
	m, err := c.TCPConn.WriteTo(w)
	return n + m, err
}

func (c *lingerConn) CloseWrite() error {
	if err := c.flush(); err != nil {
		return err
	}
	return c.TCPConn.CloseWrite()
}

func (c *lingerConn) flush() error {
	if c.raw == nil {
		return nil
	}
	return c.raw.flush()
}

// outerListener tells each lingerConn what wraps it.
type outerListener struct{ net.Listener }

func (l outerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if lc := lingerConnOf(c); lc != nil {
		lc.outer = c
	}
	return c, err
}

// lingerConnOf returns the lingerConn c is or wraps, or nil.
func lingerConnOf(c net.Conn) *lingerConn {
	for {
		switch t := c.(type) {
		case *lingerConn:
			return t
		case interface{ NetConn() net.Conn }:
			c = t.NetConn()
		default:
			return nil
		}
	}
}

// holdResponse: see rawIO.holdResponse.
func (c *lingerConn) holdResponse() {
	if c.raw != nil {
		c.raw.holdResponse()
	}
}

// endHeldWrites sends what rawIO holds and stops holding writes, so that
// the connection may be read and written concurrently (a tunnel).
func (c *lingerConn) endHeldWrites() error {
	if c.raw == nil {
		return nil
	}
	if err := c.exactRead(); err != nil {
		return err
	}
	return c.raw.plain()
}

// Close parks the connection when its wait for a request was cut for
// parking, and closes it otherwise.
func (c *lingerConn) Close() error {
	if c.park.CompareAndSwap(true, false) {
		c.parkedAway.Add(1)
		if c.f.parker.park(c) {
			return nil
		}
		c.parkedAway.Add(-1)
	}
	return c.closeNow()
}

// closeParked closes a connection the parker held, which the server no
// longer counts.
func (c *lingerConn) closeParked() {
	_ = c.closeNow()
	c.f.Stats.Conns.Add(-1)
}

// closeExpired closes a parked connection whose keep-alive timeout
// passed, and reports whether it did. Idle that long, the connection has
// no response in flight, so when nothing came in since, a plain close (a
// FIN) ends it, as HAProxy's keep-alive timeout does, without a lingering
// read and its goroutine: when ten thousand idle connections expire
// together, that is ten thousand goroutines fewer for the linger time.
// With input waiting it does nothing: closeParked lingers as usual.
func (c *lingerConn) closeExpired() bool {
	if c.raw == nil {
		return false
	}
	if n, ok := unreadInput(c.raw.rc); !ok || n != 0 {
		return false
	}
	if c.closed.CompareAndSwap(false, true) {
		_ = c.TCPConn.Close()
	}
	c.f.Stats.Conns.Add(-1) // as closeParked: the server no longer counts it
	return true
}

func (c *lingerConn) closeNow() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	linger := 2 * time.Second
	if c.f != nil {
		linger = c.f.linger
	}
	if c.peerDone.Load() && c.raw != nil {
		// The client asked to close: it sends nothing more, so once what
		// it sent was read a plain close ends the connection with a FIN,
		// as HAProxy does, with no lingering read to wait through.
		if err := c.flush(); err != nil {
			return c.TCPConn.Close()
		}
		if n, ok := unreadInput(c.raw.rc); ok && n == 0 {
			return c.TCPConn.Close()
		}
	}
	if err := c.CloseWrite(); err != nil {
		return c.TCPConn.Close()
	}
	_ = c.TCPConn.SetReadDeadline(time.Now().Add(linger))
	var buf [512]byte
	for budget := 256 << 10; budget > 0; {
		n, err := c.TCPConn.Read(buf[:])
		budget -= n
		if err != nil {
			if err == io.EOF {
				break
			}
			break
		}
	}
	return c.TCPConn.Close()
}

// afterResponse tells the client connection about the response the
// handler made: when it is whole in memory it may be held until the next
// request is read (see rawIO), and when the client asked to close the
// connection may close without lingering.
func afterResponse(ctx *fasthttp.RequestCtx) {
	lc := lingerConnOf(ctx.Conn())
	if lc == nil {
		return
	}
	lc.responded = true
	// A body still streaming in may have bytes in flight, which a plain
	// close would answer with a reset: only a request read whole counts.
	if ctx.Request.Header.ConnectionClose() && !ctx.Request.IsBodyStream() {
		lc.peerDone.Store(true)
	}
	if !ctx.Response.IsBodyStream() && !ctx.Hijacked() {
		lc.holdResponse()
	}
}

// endHeldWrites makes a client connection, or the one a wrapper holds,
// write as it is told from now on, so that the tunnel may read and write
// it at the same time.
func endHeldWrites(c net.Conn) {
	if lc := lingerConnOf(c); lc != nil {
		_ = lc.endHeldWrites()
	}
}
