package proxy

import (
	"errors"
	"io"
	"net"
	"os"

	"github.com/valyala/fasthttp"
)

// Sentinel errors of the forwarding path. They never reach a client as text:
// statusFor maps each to a status and a short fixed body.
var (
	errNoServer        = errors.New("no server of the backend is available")
	errBackendProtocol = errors.New("backend answered with a malformed response")
	errBackendClosed   = errors.New("backend closed the connection before answering")
	errServerTimeout   = errors.New("backend did not answer in time")
	errConnect         = errors.New("cannot connect to any server of the backend")
)

// statusFor maps a forwarding error to the status the client sees. It is the
// one place where errors become HTTP: 503 when nothing can serve, 504 when
// the backend is too slow, 400 for requests edgeproxy refuses, 502 for
// everything a broken backend can do.
func statusFor(err error) int {
	var cbe clientBodyError
	if errors.As(err, &cbe) {
		if isTimeout(cbe.err) {
			return fasthttp.StatusRequestTimeout
		}
		return fasthttp.StatusBadRequest
	}
	switch {
	case errors.Is(err, errNoServer):
		return fasthttp.StatusServiceUnavailable
	case errors.Is(err, errServerTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return fasthttp.StatusGatewayTimeout
	}
	if isTimeout(err) {
		return fasthttp.StatusGatewayTimeout
	}
	return fasthttp.StatusBadGateway
}

// isTimeout reports whether err is, or wraps, a network timeout.
// A deadline that passed and the end of input, the common cases, are told
// without the allocation errors.As makes.
func isTimeout(err error) bool {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return true
	case err == io.EOF:
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Fixed bodies of the responses edgeproxy writes itself: short, plain text,
// nothing internal.
var (
	body400 = []byte("400 Bad Request\n")
	body408 = []byte("408 Request Timeout\n")
	body502 = []byte("502 Bad Gateway\n")
	body503 = []byte("503 Service Unavailable\n")
	body504 = []byte("504 Gateway Timeout\n")
	body413 = []byte("413 Content Too Large\n")
	body431 = []byte("431 Request Header Fields Too Large\n")
	body501 = []byte("501 Not Implemented\n")

	textPlain = []byte("text/plain; charset=utf-8")
)

func bodyFor(status int) []byte {
	switch status {
	case fasthttp.StatusBadRequest:
		return body400
	case fasthttp.StatusRequestTimeout:
		return body408
	case fasthttp.StatusServiceUnavailable:
		return body503
	case fasthttp.StatusGatewayTimeout:
		return body504
	case fasthttp.StatusRequestEntityTooLarge:
		return body413
	case fasthttp.StatusRequestHeaderFieldsTooLarge:
		return body431
	case fasthttp.StatusNotImplemented:
		return body501
	}
	return body502
}

// writeError replaces whatever response was being built with edgeproxy's own
// short answer for status.
func writeError(ctx *fasthttp.RequestCtx, status int) {
	ctx.Response.Reset()
	ctx.Response.Header.SetNoDefaultContentType(true)
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(textPlain)
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.Response.SetBodyRaw(bodyFor(status))
}
