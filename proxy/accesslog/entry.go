package accesslog

import (
	"net/netip"
	"time"
)

// MaxURI bounds the request-target a line keeps; longer ones are cut and
// counted (Logger.Truncated), and their line says so.
const MaxURI = 1024

// maxMethod and maxProto bound the method and protocol a line keeps. A
// method is a token of any length (RFC 9110 §9.1); real ones are short.
const (
	maxMethod = 24
	maxProto  = 16
)

// Kind says what a line is about.
type Kind uint8

const (
	// Request is an HTTP request and its response.
	Request Kind = iota
	// Tunnel is an upgraded connection (WebSocket and the like), logged
	// once when both directions have ended.
	Tunnel
	// BadRequest is a request the HTTP parser refused before it had a
	// complete head (HAProxy's "<BADREQ>").
	BadRequest
)

func (k Kind) String() string {
	switch k {
	case Tunnel:
		return "tunnel"
	case BadRequest:
		return "bad request"
	}
	return "request"
}

// Entry is one finished request or tunnel. Log copies it: the byte slices
// may point into buffers that are reused as soon as Log returns. Strings are
// kept as they are (they are immutable).
type Entry struct {
	Kind Kind
	// Start is when the request head had been read: fasthttp stamps it
	// before calling the handler (ctx.Time()). It is the line's date, and
	// every timer counts from it.
	Start time.Time

	Frontend string
	// Backend and Server are empty when the request reached none.
	Backend string
	Server  string

	ClientIP   netip.Addr
	ClientPort int

	Method []byte
	URI    []byte // the request-target as sent
	Proto  []byte // "HTTP/1.1"

	Status int
	// BytesReceived and BytesSent count the body bytes received from and
	// sent to the client (headers are not counted); for a tunnel, every
	// byte that crossed it after the upgrade.
	BytesReceived int64
	BytesSent     int64

	// The timers, as HAProxy's httplog has them; a negative value means the
	// step was never reached (HAProxy's -1).
	Wait     time.Duration // Tw: time queued for a server (edgeproxy has no queue: 0)
	Connect  time.Duration // Tc: from Start until a server connection was ready, retries included
	Response time.Duration // Tr: from then until the response head was read
	Total    time.Duration // Ta: from Start until the response was complete (or the tunnel ended)

	// Termination is HAProxy's two-letter session state at disconnection:
	// who ended the request ('-' nobody, 'C' client, 'S' server, 'P' proxy;
	// lower case for a timeout) and in which phase ('R' request, 'C'
	// connect, 'H' response head, 'D' data). "--" is a normal end.
	Termination string

	Retries      int  // attempts after the first
	Redispatched bool // a retry went to another server
	// FrontendConns and ServerConns are the frontend's open connections and
	// the server's requests in flight when the line was made (HAProxy's
	// feconn and srv_conn).
	FrontendConns int64
	ServerConns   int64

	// Truncated reports that the method or URI was cut (see MaxURI).
	// Record.Set and Logger.Log set it; callers leave it false.
	Truncated bool
}

// Record is an Entry holding its own bounded copy of the request's bytes.
// Each slot of the ring is one; a caller that writes a line after the
// request's buffers are gone (a streamed body, a tunnel) keeps one too.
// A Record must not be copied once Set: its Entry points into itself.
type Record struct {
	Entry
	method [maxMethod]byte
	proto  [maxProto]byte
	uri    [MaxURI]byte
}

// Set copies e into r, cutting the method and URI to fit.
func (r *Record) Set(e *Entry) {
	r.Entry = *e
	r.Method = r.method[:copy(r.method[:], e.Method)]
	r.Proto = r.proto[:copy(r.proto[:], e.Proto)]
	r.URI = r.uri[:copy(r.uri[:], e.URI)]
	if len(r.Method) < len(e.Method) || len(r.URI) < len(e.URI) || len(r.Proto) < len(e.Proto) {
		r.Truncated = true
	}
}
