package healthcheck

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Defaults are HAProxy's, which Edge-LB pools inherit (they render a bare
// `check` on every server).
const (
	DefaultInter = 2 * time.Second
	DefaultRise  = 2
	DefaultFall  = 3

	// MaxSlowStart bounds Config.SlowStart so the weight arithmetic cannot
	// overflow.
	MaxSlowStart = 24 * time.Hour
)

// Config is the health-check configuration of one endpoint. The zero value
// disables checks; [Config.WithDefaults] fills in the documented defaults.
type Config struct {
	// Enabled turns active checks and passive ejection on. When false the
	// check part of the state is always Up.
	Enabled bool

	// Inter is the interval between checks while the server is Up and no
	// failure is pending. Default DefaultInter (HAProxy `inter 2s`).
	Inter time.Duration
	// FastInter is the interval while a transition is in progress: Up with
	// some failures, or Down with some successes. Default Inter.
	FastInter time.Duration
	// DownInter is the interval while the server is Down with no success
	// yet. Default Inter.
	DownInter time.Duration

	// Timeout bounds one whole check: connect, and for HTTP checks also
	// sending the request and reading the status line. Default Inter,
	// which is what HAProxy does when `timeout check` is not set (the
	// Edge-LB template does not set it).
	Timeout time.Duration

	// Rise is the number of consecutive successful checks that bring a
	// Down server Up. Default DefaultRise.
	Rise int
	// Fall is the number of consecutive failed checks that take an Up
	// server Down. Default DefaultFall.
	Fall int

	// ErrorLimit is the number of consecutive passive failures
	// ([Target.ReportFailure]) that mark the server Down at once. 0 means
	// Fall; a negative value turns passive ejection off.
	ErrorLimit int

	// Port, when not 0, is the port checks connect to instead of the
	// endpoint's own (HAProxy `port`).
	Port int

	// HTTP selects an HTTP check; nil means a TCP connect check.
	HTTP *HTTPCheck

	// SlowStart is how long the weight ramps up after the server starts
	// taking traffic again. 0 means no ramp.
	SlowStart time.Duration
}

// HTTPCheck describes the request of an HTTP check (HAProxy
// `option httpchk <method> <uri>`).
type HTTPCheck struct {
	// Method defaults to GET.
	Method string
	// Path is the request target in origin form; default "/".
	Path string
	// Host is the Host header; default the address checked (host:port).
	Host string
	// ExpectStatus is the one status code that passes; 0 means any 2xx or
	// 3xx passes (HAProxy's default).
	ExpectStatus int
}

// WithDefaults returns c with every zero field that has a documented
// default filled in. A disabled Config is returned unchanged.
func (c Config) WithDefaults() Config {
	if !c.Enabled {
		return c
	}
	if c.Inter == 0 {
		c.Inter = DefaultInter
	}
	if c.FastInter == 0 {
		c.FastInter = c.Inter
	}
	if c.DownInter == 0 {
		c.DownInter = c.Inter
	}
	if c.Timeout == 0 {
		c.Timeout = c.Inter
	}
	if c.Rise == 0 {
		c.Rise = DefaultRise
	}
	if c.Fall == 0 {
		c.Fall = DefaultFall
	}
	if c.ErrorLimit == 0 {
		c.ErrorLimit = c.Fall
	}
	if c.HTTP != nil {
		h := *c.HTTP
		if h.Method == "" {
			h.Method = "GET"
		}
		if h.Path == "" {
			h.Path = "/"
		}
		c.HTTP = &h
	}
	return c
}

// Validate reports the first invalid field of c. Zero values are valid
// (they mean "default").
func (c Config) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"inter", c.Inter}, {"fastinter", c.FastInter}, {"downinter", c.DownInter},
		{"timeout", c.Timeout}, {"slowstart", c.SlowStart},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s %v is negative", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.SlowStart > MaxSlowStart {
		return fmt.Errorf("%w: slowstart %v exceeds %v", ErrInvalidConfig, c.SlowStart, MaxSlowStart)
	}
	if c.Rise < 0 {
		return fmt.Errorf("%w: rise %d is negative", ErrInvalidConfig, c.Rise)
	}
	if c.Fall < 0 {
		return fmt.Errorf("%w: fall %d is negative", ErrInvalidConfig, c.Fall)
	}
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("%w: port %d is out of range", ErrInvalidConfig, c.Port)
	}
	if c.HTTP != nil {
		if err := c.HTTP.validate(); err != nil {
			return err
		}
	}
	return nil
}

func (h *HTTPCheck) validate() error {
	for i := 0; i < len(h.Method); i++ {
		if !isTokenChar(h.Method[i]) {
			return fmt.Errorf("%w: http method %q is not a token", ErrInvalidConfig, h.Method)
		}
	}
	// RFC 9112 section 3.2.1: origin-form = absolute-path [ "?" query ].
	if h.Path != "" && (h.Path[0] != '/' || !isVisible(h.Path)) {
		return fmt.Errorf("%w: http path %q is not an origin-form target", ErrInvalidConfig, h.Path)
	}
	if !isVisible(h.Host) {
		return fmt.Errorf("%w: http host %q contains a space or control character", ErrInvalidConfig, h.Host)
	}
	if h.ExpectStatus != 0 && (h.ExpectStatus < 100 || h.ExpectStatus > 999) {
		return fmt.Errorf("%w: http expected status %d is not a status code", ErrInvalidConfig, h.ExpectStatus)
	}
	return nil
}

// isTokenChar reports whether b is a tchar (RFC 9110 section 5.6.2).
func isTokenChar(b byte) bool {
	switch {
	case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		return true
	}
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}

// isVisible reports whether s has no space, control or non-ASCII byte, so
// it cannot split or fold a request line or header.
func isVisible(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// checkAddress returns the address checks dial: addr, or addr's host with
// port when port is not 0.
func checkAddress(addr string, port int) (string, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%w: address %q: %w", ErrInvalidConfig, addr, err)
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%w: address %q: bad port", ErrInvalidConfig, addr)
	}
	if host == "" {
		return "", fmt.Errorf("%w: address %q: empty host", ErrInvalidConfig, addr)
	}
	if port == 0 {
		return addr, nil
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// buildRequest renders the HTTP check request once, at Add. RFC 9112
// section 3.2 requires Host in HTTP/1.1; Connection: close (RFC 9112
// section 9.6) lets the server end the exchange after its answer.
func buildRequest(h *HTTPCheck, checkAddr string) []byte {
	host := h.Host
	if host == "" {
		host = checkAddr
	}
	b := make([]byte, 0, 96+len(h.Method)+len(h.Path)+len(host))
	b = append(b, h.Method...)
	b = append(b, ' ')
	b = append(b, h.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\nUser-Agent: edgeproxy-healthcheck\r\nConnection: close\r\n\r\n"...)
	return b
}
