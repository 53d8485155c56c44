package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// smallBody is the largest response body read whole before it is written
// to the client: below it one buffered write beats streaming.
const smallBody = 16 << 10

// maxBufferedRequestBody is how much of a request body the frontend reads
// before it forwards anything; larger bodies stream with bounded memory.
const maxBufferedRequestBody = 64 << 10

// handle serves one client request: it checks framing, routes, and forwards.
func (f *Frontend) handle(ctx *fasthttp.RequestCtx) {
	rl := f.newRequestLog(ctx)
	f.serve(ctx, &rl)
	// A client's "close" (any case, among other options, RFC 9110 §7.6.1)
	// is recorded by the server before the handler runs and honoured after
	// it; edgeproxy's own decision to close is applied here, once the
	// response head is final.
	if f.closing.Load() {
		ctx.SetConnectionClose()
	}
	f.Stats.Requests.Add(1)
	f.Stats.Responses[statusClass(ctx.Response.StatusCode())].Add(1)
	f.logRequest(ctx, &rl)
	afterResponse(ctx)
}

func (f *Frontend) serve(ctx *fasthttp.RequestCtx, rl *requestLog) {
	var info requestHeadInfo
	scanRequestHead(ctx.Request.Header.RawHeaders(), &info)
	// RFC 9112 §6.3: a request with both Transfer-Encoding and
	// Content-Length may be an attempt at smuggling; refuse it and close.
	if info.transferEnc > 0 && info.contentLength > 0 || info.conn.overflow {
		f.refuse(ctx, fasthttp.StatusBadRequest)
		return
	}
	be := f.router.route(ctx)
	rl.backend = be
	if be == nil {
		f.Stats.NoRoute.Add(1)
		writeError(ctx, fasthttp.StatusServiceUnavailable)
		return
	}
	if info.conn.upgrade && len(info.upgrade) > 0 {
		f.tunnel(ctx, be, &info, rl)
		return
	}
	f.forward(ctx, be, &info, rl)
}

func (f *Frontend) refuse(ctx *fasthttp.RequestCtx, status int) {
	f.Stats.Refused.Add(1)
	writeError(ctx, status)
	ctx.SetConnectionClose()
}

// isIdempotent reports whether a request may be sent twice
// (RFC 9110 §9.2.2); only those are retried after a reused backend
// connection failed under them.
func isIdempotent(method []byte) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// forward sends the request to a server of be and copies the response back,
// retrying on another server while no byte of the request can have been
// processed.
func (f *Frontend) forward(ctx *fasthttp.RequestCtx, be *Backend, info *requestHeadInfo, rl *requestLog) {
	opts := be.opts
	hash := uint64(0)
	if be.balance == Source {
		a, _ := f.client(ctx)
		hash = ipHash(a)
	}
	var srv, failed *Server
	var err error
	for attempt := 0; attempt <= opts.Retries; attempt++ {
		avoid := failed
		if !opts.Redispatch {
			avoid = nil
		}
		if srv == nil || opts.Redispatch || srv == failed && !srv.Available() {
			srv = be.pick(hash, avoid)
		}
		if srv == nil {
			break
		}
		if attempt > 0 {
			// As HAProxy counts them: a retry on the same server is a retry
			// warning of that server (wretr); moving to another one is a
			// redispatch warning of the server left (wredis).
			if srv == failed {
				srv.Stats.Retries.Add(1)
			} else {
				failed.Stats.Redispatch.Add(1)
			}
		}
		var retry bool
		rl.attempt(srv, attempt)
		retry, err = f.exchange(ctx, srv, info, rl)
		if err == nil || !retry {
			break
		}
		failed = srv
	}
	if srv == nil && err == nil {
		be.Stats.NoServer.Add(1)
		err = errNoServer
	}
	if err != nil {
		rl.err = err
		status := statusFor(err)
		writeError(ctx, status)
		be.Stats.LocalResponses[statusClass(status)].Add(1)
		var cbe clientBodyError
		if errors.As(err, &cbe) {
			// The request body's framing is lost: nothing after it can be
			// read as a request.
			ctx.SetConnectionClose()
		}
	}
}

// clientBodyError is a failure to read the request body from the client:
// a malformed chunk, a short body, or a timeout.
type clientBodyError struct{ err error }

func (e clientBodyError) Error() string { return "reading request body: " + e.err.Error() }
func (e clientBodyError) Unwrap() error { return e.err }

// exchange runs one request/response exchange with srv. retry reports that
// the request can safely be sent again (nothing reached the server, or a
// reused connection died before answering an idempotent request).
func (f *Frontend) exchange(ctx *fasthttp.RequestCtx, srv *Server, info *requestHeadInfo, rl *requestLog) (retry bool, err error) {
	opts := srv.backend.opts
	bc, reused, err := srv.acquire(&srv.backend.dialer)
	if err != nil {
		srv.Stats.ConnErrors.Add(1)
		srv.reportFailure()
		return true, errConnect
	}
	srv.Stats.Active.Add(1)
	srv.Stats.Requests.Add(1)

	req := &ctx.Request
	bodyLen := req.Header.ContentLength() // -1 chunked, -2 none
	stream := req.IsBodyStream()
	if stream && bodyLen >= 0 && bodyLen <= maxBufferedRequestBody {
		// The server already holds all of it: send it with the head.
		stream = false
	}
	var body []byte
	if !stream && bodyLen != -2 {
		body = req.Body()
		bodyLen = len(body)
	}
	bc.wbuf = appendRequestHead(bc.wbuf[:0], req.Header.Method(), req.Header.RequestURI(),
		req.Header.RawHeaders(), info, &srv.backend.rw, clientAddr(ctx),
		f.portBytes, f.tls, bodyLen, false)
	if !stream {
		bc.wbuf = append(bc.wbuf, body...)
	}
	now := time.Now()
	rl.connected(now)
	bc.armDeadline(now, opts.Timeouts.Server)
	if stream {
		_, err = bc.write(bc.wbuf)
		if err == nil {
			err = f.copyRequestBody(ctx, bc, bodyLen, opts.Timeouts)
			if err != nil {
				// Part of the body may have reached the server: no retry.
				return f.fail(srv, bc, false, err)
			}
		}
	} else {
		err = bc.send(bc.wbuf)
	}
	if err != nil {
		return f.sendFailed(ctx, srv, bc, stream, reused)
	}
	resp := &ctx.Response
	if err = readResponseHead(bc.br, &resp.Header); err != nil {
		if bc.sendFailed() {
			return f.sendFailed(ctx, srv, bc, stream, reused)
		}
		if !reused || !errors.Is(err, errBackendClosed) {
			// A reused connection the server closed while idle says nothing
			// of the server's health; anything else does.
			srv.reportFailure()
		}
		// Nothing of a response arrived. An idempotent request whose body
		// edgeproxy still holds may go to another server when the
		// connection was closed under it (a reused one closed while idle,
		// or a server that died: issue "Backend health", SIGKILL under
		// load), or when the server let the response timeout pass
		// (HAProxy's retry-on conn-failure, empty-response and
		// response-timeout): a dead or hung server then costs the client
		// time, not an error.
		replayable := isIdempotent(req.Header.Method()) && !stream
		canRetry := replayable && (errors.Is(err, errBackendClosed) || errors.Is(err, errServerTimeout))
		return f.fail(srv, bc, canRetry, err)
	}
	srv.reportSuccess()
	srv.backend.Stats.observeResponse(time.Since(now))
	rl.responded()
	backendClose := resp.Header.ConnectionClose()
	status := resp.Header.StatusCode()
	cleanResponseHead(&resp.Header, false)
	srv.Stats.Responses[statusClass(status)].Add(1)

	switch {
	case req.Header.IsHead() || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified:
		resp.SkipBody = true
		f.done(srv, bc, !backendClose)
	case resp.Header.ContentLength() >= 0 && resp.Header.ContentLength() <= smallBody:
		if err = resp.ReadBody(bc.br, smallBody); err != nil {
			return f.fail(srv, bc, false, errBackendProtocol)
		}
		srv.Stats.BytesOut.Add(uint64(len(resp.Body())))
		f.done(srv, bc, !backendClose)
	default:
		cl := resp.Header.ContentLength()
		mode := bodyFixed
		switch cl {
		case -1:
			mode = bodyChunked
		case -2:
			mode = bodyUntilClose
			cl = -1
		}
		bc.body.start(mode, int64(cl), !backendClose, opts.Timeouts.Server, ctx.Conn(), f.timeouts.Client)
		resp.SetBodyStream(f.logStream(ctx, rl, &bc.body), cl)
	}
	return false, nil
}

// sendFailed ends an exchange whose request could not be sent. The
// server cannot have answered: a reused connection was closed while idle,
// a new one reset by a server that died with it in its accept queue. An
// idempotent request may go elsewhere either way (RFC 9110 §9.2.2; issue
// "Backend health": SIGKILL under load), and so may any request edgeproxy
// holds whole when the connection was a reused one.
func (f *Frontend) sendFailed(ctx *fasthttp.RequestCtx, srv *Server, bc *bconn, stream, reused bool) (bool, error) {
	return f.fail(srv, bc, !stream && (reused || isIdempotent(ctx.Request.Header.Method())), errBackendClosed)
}

// done ends an exchange whose response was read whole.
func (f *Frontend) done(srv *Server, bc *bconn, reusable bool) {
	srv.Stats.Active.Add(-1)
	srv.release(bc, reusable)
}

func (f *Frontend) fail(srv *Server, bc *bconn, retry bool, err error) (bool, error) {
	srv.Stats.Active.Add(-1)
	srv.Stats.RespErrors.Add(1)
	bc.close()
	srv.release(bc, false)
	return retry, err
}

func statusClass(code int) int {
	if c := code / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

// readResponseHead reads the final response head, skipping interim 1xx
// responses other than 101 (RFC 9110 §15.2). A connection that ends before
// the first byte is errBackendClosed, a deadline errServerTimeout, anything
// else a protocol error.
func readResponseHead(br *bufio.Reader, h *fasthttp.ResponseHeader) error {
	h.DisableNormalizing()
	for range 8 {
		if _, err := br.Peek(1); err != nil {
			if isTimeout(err) {
				return errServerTimeout
			}
			return errBackendClosed
		}
		if err := h.Read(br); err != nil {
			if isTimeout(err) {
				return errServerTimeout
			}
			return errBackendProtocol
		}
		if c := h.StatusCode(); c >= 200 || c == fasthttp.StatusSwitchingProtocols {
			return nil
		}
	}
	return errBackendProtocol
}

// copyBufs are the buffers request bodies stream through.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyRequestBody streams the client's request body to the backend, with
// Content-Length framing when the client sent one and chunked coding
// otherwise. Each read from the client pushes out its read deadline: the
// client timeout is one of inactivity.
func (f *Frontend) copyRequestBody(ctx *fasthttp.RequestCtx, bc *bconn, bodyLen int, t Timeouts) error {
	src := ctx.Request.BodyStream()
	client := ctx.Conn()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	const head = 18 // room for a chunk-size line: 16 hex digits + CRLF
	var sent int64
	for {
		_ = client.SetReadDeadline(time.Now().Add(f.timeouts.Client))
		n, rerr := src.Read(buf[head : len(buf)-2])
		if n > 0 {
			bc.setWriteDeadline(time.Now().Add(t.Server))
			var werr error
			if bodyLen == -1 {
				hex := strconv.AppendUint(buf[:0:head], uint64(n), 16)
				start := head - len(hex) - 2
				copy(buf[start:], hex)
				buf[head-2], buf[head-1] = '\r', '\n'
				buf[head+n], buf[head+n+1] = '\r', '\n'
				_, werr = bc.write(buf[start : head+n+2])
			} else {
				_, werr = bc.write(buf[head : head+n])
			}
			if werr != nil {
				return werr
			}
			sent += int64(n)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return clientBodyError{rerr}
		}
	}
	bc.srv.Stats.BytesIn.Add(uint64(sent))
	if bodyLen >= 0 && sent != int64(bodyLen) {
		return clientBodyError{io.ErrUnexpectedEOF}
	}
	if bodyLen == -1 {
		_, err := bc.write([]byte("0\r\n\r\n"))
		return err
	}
	return nil
}

// clientAddr is the client's address as X-Forwarded-For shows it.
func clientAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	return clientAddrFrom(ctx.RemoteIP())
}

func clientAddrFrom(ip net.IP) netip.Addr {
	if v4 := ip.To4(); v4 != nil {
		return netip.AddrFrom4([4]byte(v4))
	}
	if len(ip) == net.IPv6len {
		return netip.AddrFrom16([16]byte(ip))
	}
	return netip.Addr{}
}
