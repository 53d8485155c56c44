package config

import (
	"regexp"
	"time"
)

// The settings below come from the raw HAProxy strings of the pool (see
// rawhaproxy.go). Parse computes them once; the accessors return copies.
// Pointer fields inside the copies are shared and must be treated as
// read-only.

// Balance is a load-balancing algorithm, named as in HAProxy's `balance`.
type Balance string

// The algorithms edgeproxy accepts.
const (
	RoundRobin Balance = "roundrobin" // the default
	StaticRR   Balance = "static-rr"
	LeastConn  Balance = "leastconn"
	Source     Balance = "source"
	Random     Balance = "random" // see BackendOptions.RandomDraws
)

// HAProxy's server defaults (HAProxy 2.0 configuration manual, section 5.2:
// inter 2000 ms, rise 2, fall 3, weight 1).
const (
	DefaultInter  = 2 * time.Second
	DefaultRise   = 2
	DefaultFall   = 3
	DefaultWeight = 1
)

// ServerOptions are the settings of each server a Service produces.
type ServerOptions struct {
	Weight    int           // 0..256, default 1; 0 takes the server out of rotation
	MaxConn   int           // concurrent connections per server; 0 = unlimited
	SlowStart time.Duration // ramp-up after the server comes up; 0 = none
	Check     CheckOptions
}

// CheckOptions describe the active health check of one server.
type CheckOptions struct {
	// Enabled is endpoint.check.enabled (default true), then changed by a
	// `check` or `no-check` keyword in the raw strings.
	Enabled bool
	// Inter is the interval between checks (default 2s). FastInter applies
	// while a server is changing state and DownInter while it is down; both
	// default to Inter, as in HAProxy.
	Inter, FastInter, DownInter time.Duration
	// Timeout bounds one check (connect and, for HTTP, the response). It is
	// the backend's `timeout check` when set, otherwise Inter: HAProxy uses
	// inter as the whole check timeout when `timeout check` is absent.
	Timeout time.Duration
	// Rise and Fall are the consecutive successes and failures that change
	// the server's state (defaults 2 and 3).
	Rise, Fall int
	// Port is the port to check; 0 = the server's own port.
	Port int
	// HTTP is the HTTP check; nil = a TCP connect check.
	HTTP *HTTPCheck
}

// HTTPCheck is an HTTP health check (`option httpchk`).
type HTTPCheck struct {
	Method  string // default "OPTIONS", as in HAProxy
	Path    string // default "/"
	Version string // "HTTP/1.0" (HAProxy's default) or "HTTP/1.1"
	Host    string // from the `HTTP/1.1\r\nHost:\ name` idiom; "" = none
	// ExpectStatus is the one status that counts as healthy
	// (`http-check expect status N`); 0 = any 2xx or 3xx.
	ExpectStatus int
}

// Timeouts are HAProxy timeouts set in the pool's raw strings. Zero means not
// set in the config: the proxy applies its own default.
type Timeouts struct {
	Connect, Client, Server, HTTPRequest, Tunnel, Queue, HTTPKeepAlive time.Duration
	// Check is `timeout check` (backend only); see CheckOptions.Timeout.
	Check time.Duration
}

// BackendOptions are a backend's settings.
type BackendOptions struct {
	Balance Balance
	// RandomDraws is N of `random(N)`; 0 when random was given without an
	// argument (HAProxy then draws 2).
	RandomDraws int
	Retries     int   // -1 = not set
	Redispatch  *bool // nil = not set
	Timeouts    Timeouts
	// Sticky is cookie stickiness for HTTP and HTTPS backends, nil when off.
	Sticky *StickyOptions
}

// StickyOptions is cookie stickiness (rewriteHttp.sticky). Edge-LB's default
// is `cookie DCOS_SERVER_ID_FOR_THE_STICKY insert indirect nocache`.
type StickyOptions struct {
	Cookie   string
	Indirect bool
	NoCache  bool
	HTTPOnly bool
	Secure   bool
}

// DefaultStickyCookie is the cookie Edge-LB inserts for sticky backends.
const DefaultStickyCookie = "DCOS_SERVER_ID_FOR_THE_STICKY"

// FrontendOptions are a frontend's settings.
type FrontendOptions struct {
	MaxConn     int  // 0 = not set
	AcceptProxy bool // the listener expects the PROXY protocol (v1 or v2)
	Timeouts    Timeouts
}

// backendOptions is what Parse keeps per backend: the public options plus the
// backend-wide parts of the servers' health checks.
type backendOptions struct {
	BackendOptions
	httpCheck    *HTTPCheck
	expectStatus int // `http-check expect status`, folded into httpCheck
}

// Options returns the frontend's settings. On a Frontend that did not come
// from Parse it returns the zero value.
func (f *Frontend) Options() FrontendOptions {
	if f.opts == nil {
		return FrontendOptions{}
	}
	return *f.opts
}

// Options returns the backend's settings. On a Backend that did not come from
// Parse it returns round robin and nothing else set.
func (b *Backend) Options() BackendOptions {
	if b.opts == nil {
		return BackendOptions{Balance: RoundRobin, Retries: -1}
	}
	return b.opts.BackendOptions
}

// Server returns the settings of the servers that s produces in backend b:
// the endpoint's check.enabled, check.customStr and miscStr, merged with b's
// HTTP check and `timeout check`. b may be nil.
func (s *Service) Server(b *Backend) ServerOptions {
	o := defaultServerOptions()
	if s.server != nil {
		o = *s.server
	}
	if b != nil && b.opts != nil {
		o.Check.HTTP = b.opts.httpCheck
		if t := b.opts.Timeouts.Check; t > 0 {
			o.Check.Timeout = t
		}
	}
	if o.Check.Timeout == 0 {
		o.Check.Timeout = o.Check.Inter
	}
	if o.Check.FastInter == 0 {
		o.Check.FastInter = o.Check.Inter
	}
	if o.Check.DownInter == 0 {
		o.Check.DownInter = o.Check.Inter
	}
	return o
}

func defaultServerOptions() ServerOptions {
	return ServerOptions{
		Weight: DefaultWeight,
		Check: CheckOptions{
			Enabled: true,
			Inter:   DefaultInter,
			Rise:    DefaultRise,
			Fall:    DefaultFall,
		},
	}
}

// HostRegexp returns the compiled HostReg, or nil when HostReg is empty. It
// matches anywhere in the Host header value (HAProxy `-m reg` is
// unanchored); the header is matched case-insensitively, so the pattern is
// compiled with (?i).
func (m *RouteMap) HostRegexp() *regexp.Regexp { return m.hostRe }

// PathRegexp returns the compiled PathReg, or nil when PathReg is empty. It
// matches anywhere in the path, as HAProxy's path_reg does.
func (m *RouteMap) PathRegexp() *regexp.Regexp { return m.pathRe }

// ServiceIDRegexp returns the compiled ServiceIDPattern, or nil when it is
// empty. Like Edge-LB it is unanchored: write ^ and $ to match a whole ID.
func (m *MarathonSelector) ServiceIDRegexp() *regexp.Regexp { return m.serviceIDRe }

// ContainerNameRegexp returns the compiled ContainerNamePattern, or nil.
func (m *MarathonSelector) ContainerNameRegexp() *regexp.Regexp { return m.containerNameRe }
