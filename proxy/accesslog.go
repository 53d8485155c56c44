package proxy

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy/accesslog"
	"github.com/valyala/fasthttp"
)

// This file connects the request path to package accesslog. A request's
// line is made where its response is final: when the handler returns, or,
// for a streamed body, when fasthttp closes the stream after sending it; an
// upgraded tunnel's when both directions have ended. The clock is fasthttp's
// request time (ctx.Time(), read as the handler starts: the server runs
// with LazyRequestTime, so that no clock is read for it with logging off);
// the request path reads it again only when a server connection is ready (a
// time the forwarding code reads anyway), when the response head has
// arrived and at the end.

// requestLog collects, on the handler's stack, what a request's line needs
// beyond what ctx holds. With logging off it stays inert: the request path
// sets a few fields and reads no clock.
type requestLog struct {
	on      bool
	start   time.Time
	backend *Backend
	server  *Server
	retries int
	// connect and response are when, counted from start, a server
	// connection was ready and the response head had been read; -1 before.
	connect  time.Duration
	response time.Duration
	err      error // what forwarding failed with
	// deferred says a body stream or a tunnel writes the line when it ends.
	deferred bool
}

func (f *Frontend) newRequestLog(ctx *fasthttp.RequestCtx) requestLog {
	if f.accessLog == nil {
		return requestLog{}
	}
	return requestLog{on: true, start: ctx.Time(), connect: -1, response: -1}
}

// attempt records the server attempt n (0 for the first) goes to.
func (rl *requestLog) attempt(srv *Server, n int) {
	rl.server, rl.retries = srv, n
	rl.connect, rl.response = -1, -1
}

// connected records that the attempt's connection is ready at now.
func (rl *requestLog) connected(now time.Time) {
	if rl.on {
		rl.connect = now.Sub(rl.start)
	}
}

// dialed is attempt and connected for a tunnel's own connection.
func (rl *requestLog) dialed(srv *Server, n int) {
	rl.attempt(srv, n)
	if rl.on {
		rl.connect = time.Since(rl.start)
	}
}

// responded records that the response head has been read.
func (rl *requestLog) responded() {
	if rl.on {
		rl.response = time.Since(rl.start)
	}
}

// logRequest writes the line of a request whose response is complete when
// the handler returns.
func (f *Frontend) logRequest(ctx *fasthttp.RequestCtx, rl *requestLog) {
	if !rl.on || rl.deferred {
		return
	}
	var e accesslog.Entry
	f.entry(&e, ctx, rl)
	if !ctx.Response.SkipBody && !ctx.Response.IsBodyStream() && !ctx.IsHead() {
		e.BytesSent = int64(len(ctx.Response.Body()))
	}
	e.Total = time.Since(rl.start)
	f.accessLog.Log(&e)
}

// entry fills e with all a line has but the bytes sent and the total time.
func (f *Frontend) entry(e *accesslog.Entry, ctx *fasthttp.RequestCtx, rl *requestLog) {
	req := &ctx.Request
	*e = accesslog.Entry{
		Start:         rl.start,
		Frontend:      f.Name,
		Method:        req.Header.Method(),
		URI:           req.Header.RequestURI(),
		Proto:         req.Header.Protocol(),
		Status:        ctx.Response.StatusCode(),
		Wait:          -1,
		Connect:       -1,
		Response:      -1,
		Retries:       rl.retries,
		FrontendConns: f.Stats.Conns.Load(),
	}
	e.ClientIP, e.ClientPort = f.client(ctx)
	// The declared length of the body: a chunked body streamed to the
	// server is not counted.
	if n := req.Header.ContentLength(); n > 0 {
		e.BytesReceived = int64(n)
	} else if !req.IsBodyStream() {
		e.BytesReceived = int64(len(req.Body()))
	}
	if be := rl.backend; be != nil {
		e.Backend = be.Name
		e.Redispatched = rl.retries > 0 && be.opts.Redispatch
	}
	if s := rl.server; s != nil {
		e.Server = s.Name
		if e.Server == "" {
			e.Server = s.Addr
		}
		e.ServerConns = s.Stats.Active.Load()
		e.Wait = 0 // no queue: a server is taken at once or not at all
		e.Connect = rl.connect
		if rl.connect >= 0 && rl.response >= 0 {
			e.Response = rl.response - rl.connect
		}
	}
	e.Termination = termination(rl, e.Status)
}

// termination is HAProxy's two-letter termination state of a request (see
// accesslog.Entry), derived from how forwarding ended: its error if any,
// else whether a server answered, else the status edgeproxy answered with.
func termination(rl *requestLog, status int) string {
	if err := rl.err; err != nil {
		var cbe clientBodyError
		switch {
		case errors.As(err, &cbe):
			return timeoutOr(cbe.err, "cD", "CD")
		case errors.Is(err, errNoServer), errors.Is(err, errConnect):
			return "SC"
		case rl.response >= 0: // the head had arrived: the body broke
			return timeoutOr(err, "sD", "SD")
		case errors.Is(err, errBackendProtocol):
			return "PH"
		case errors.Is(err, errServerTimeout):
			return "sH"
		}
		return timeoutOr(err, "sH", "SH")
	}
	if rl.response >= 0 {
		return "--"
	}
	switch status {
	case fasthttp.StatusBadRequest, fasthttp.StatusRequestEntityTooLarge,
		fasthttp.StatusRequestHeaderFieldsTooLarge:
		return "PR" // refused
	case fasthttp.StatusRequestTimeout:
		return "cR"
	case fasthttp.StatusBadGateway:
		return "SH"
	case fasthttp.StatusServiceUnavailable:
		return "SC" // no route or no server, as HAProxy's <NOSRV>
	case fasthttp.StatusGatewayTimeout:
		return "sH"
	}
	return "--"
}

func timeoutOr(err error, timeout, other string) string {
	if isTimeout(err) {
		return timeout
	}
	return other
}

// logBadRequest writes the line of a request the parser refused (its
// method and URI cannot be trusted, so the line shows <BADREQ>).
func (f *Frontend) logBadRequest(ctx *fasthttp.RequestCtx, status int) {
	if f.accessLog == nil {
		return
	}
	e := accesslog.Entry{
		Kind:          accesslog.BadRequest,
		Start:         time.Now(), // ctx.Time() is not set for it
		Frontend:      f.Name,
		Status:        status,
		BytesSent:     int64(len(bodyFor(status))),
		Wait:          -1,
		Connect:       -1,
		Response:      -1,
		Termination:   "PR",
		FrontendConns: f.Stats.Conns.Load(),
	}
	if status == fasthttp.StatusRequestTimeout {
		e.Termination = "cR"
	}
	e.ClientIP, e.ClientPort = f.client(ctx)
	f.accessLog.Log(&e)
}

// loggedBody passes a streamed response body through, counting it, and
// writes the request's line when fasthttp closes it: after the last byte
// went to the client, or when either side failed.
type loggedBody struct {
	body    *bodyReader
	log     *accesslog.Logger
	start   time.Time
	n       int64
	readErr error
	rec     accesslog.Record
}

var _ fasthttp.ReadCloserWithError = (*loggedBody)(nil)

// loggedBodies recycles loggedBody values; only streamed responses (over
// 16 KiB, chunked or close-delimited) take one.
var loggedBodies = sync.Pool{New: func() any { return new(loggedBody) }}

// logStream returns the reader to stream body through: body itself with
// logging off.
func (f *Frontend) logStream(ctx *fasthttp.RequestCtx, rl *requestLog, body *bodyReader) io.Reader {
	if !rl.on {
		return body
	}
	b := loggedBodies.Get().(*loggedBody)
	var e accesslog.Entry
	f.entry(&e, ctx, rl)
	b.rec.Set(&e)
	b.body, b.log, b.start, b.n, b.readErr = body, f.accessLog, rl.start, 0, nil
	rl.deferred = true
	return b
}

func (b *loggedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.readErr = err
	}
	return n, err
}

// CloseWithError is called once by fasthttp when it is done with the body;
// werr is what ended writing it, nil when it was all sent.
func (b *loggedBody) CloseWithError(werr error) error {
	err := b.body.Close()
	e := &b.rec.Entry
	e.BytesSent = b.n
	e.Total = time.Since(b.start)
	switch {
	case b.readErr != nil:
		e.Termination = timeoutOr(b.readErr, "sD", "SD")
	case werr != nil:
		e.Termination = timeoutOr(werr, "cD", "CD")
	}
	b.log.Log(e)
	b.body, b.log, b.readErr = nil, nil, nil
	loggedBodies.Put(b)
	return err
}

// tunnelLog is the line of an upgraded connection, written when the tunnel
// ends. A nil *tunnelLog (logging off) does nothing.
type tunnelLog struct {
	log   *accesslog.Logger
	start time.Time
	rec   accesslog.Record
}

func (f *Frontend) holdTunnelLog(ctx *fasthttp.RequestCtx, rl *requestLog) *tunnelLog {
	if !rl.on {
		return nil
	}
	t := &tunnelLog{log: f.accessLog, start: rl.start}
	var e accesslog.Entry
	f.entry(&e, ctx, rl)
	e.Kind = accesslog.Tunnel
	t.rec.Set(&e)
	rl.deferred = true
	return t
}

// done writes the line; up and down are the bytes the tunnel carried from
// the client and to it.
func (t *tunnelLog) done(up, down int64) {
	if t == nil {
		return
	}
	e := &t.rec.Entry
	e.BytesReceived, e.BytesSent = up, down
	e.Total = time.Since(t.start)
	t.log.Log(e)
}
