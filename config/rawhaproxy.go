package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Edge-LB pastes a pool's raw strings into haproxy.cfg. edgeproxy has no
// HAProxy underneath, so it reads the subset below into typed settings and
// rejects every other keyword by name. Keywords and units follow the HAProxy
// 2.0 configuration manual (the version Edge-LB 1.4 to 1.7 shipped): section
// 2.4 (time format), 4.2 (proxy keywords), 5.1 (bind options), 5.2 (server
// options).

// rawError is a problem in one raw string; the caller adds the JSON path.
type rawError struct {
	value string // the offending token, or ""
	msg   string
}

func (e *rawError) Error() string {
	if e.value == "" {
		return e.msg
	}
	return strconv.Quote(e.value) + " " + e.msg
}

func rawErrf(value, format string, args ...any) *rawError {
	return &rawError{value: value, msg: fmt.Sprintf(format, args...)}
}

// tokenize splits a raw string on blanks the way HAProxy's parser does for
// the keywords supported here: a backslash-escaped blank (`\ `) stays in the
// word, other backslash sequences are kept verbatim (so `\r\n` survives for
// the httpchk Host idiom), and an unescaped '#' starts a comment. Quotes are
// rejected: no supported keyword needs them.
func tokenize(s string) ([]string, *rawError) {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (s[i+1] == ' ' || s[i+1] == '\t'):
			cur.WriteByte(s[i+1])
			inWord = true
			i++
		case c == ' ' || c == '\t':
			flush()
		case c == '\n' || c == '\r':
			return nil, rawErrf("", "contains a line break; put one directive per string")
		case c == '#' && !inWord:
			flush()
			return words, nil
		case c == '"' || c == '\'':
			return nil, rawErrf(string(c), "quoting is not supported in raw strings")
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, nil
}

// maxTime is HAProxy's largest timer, 2^31-1 ms (about 24.8 days).
const maxTime = time.Duration(math.MaxInt32) * time.Millisecond

// parseTime reads an HAProxy time: an unsigned integer with an optional unit
// us, ms, s, m, h or d; a bare number is milliseconds (HAProxy manual 2.4).
func parseTime(s string) (time.Duration, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("want a number with an optional unit us, ms, s, m, h or d")
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, errors.New("too large")
	}
	var unit time.Duration
	switch s[i:] {
	case "us":
		unit = time.Microsecond
	case "", "ms":
		unit = time.Millisecond
	case "s":
		unit = time.Second
	case "m":
		unit = time.Minute
	case "h":
		unit = time.Hour
	case "d":
		unit = 24 * time.Hour
	default:
		return 0, fmt.Errorf("unknown unit %q (want us, ms, s, m, h or d)", s[i:])
	}
	if n > uint64(maxTime/unit) {
		return 0, errors.New("too large (HAProxy's limit is 2147483647ms)")
	}
	return time.Duration(n) * unit, nil
}

// parseInt reads a decimal integer in [lo, hi].
func parseInt(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || s == "" || s[0] == '+' {
		return 0, errors.New("is not an integer")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("is out of range %d..%d", lo, hi)
	}
	return n, nil
}

// args walks the words of one directive.
type args struct {
	words []string
	i     int
}

func (a *args) more() bool { return a.i < len(a.words) }

func (a *args) next() string {
	w := a.words[a.i]
	a.i++
	return w
}

// value returns the argument of keyword kw.
func (a *args) value(kw string) (string, *rawError) {
	if !a.more() {
		return "", rawErrf(kw, "needs a value")
	}
	return a.next(), nil
}

func (a *args) time(kw string, positive bool) (time.Duration, *rawError) {
	v, rerr := a.value(kw)
	if rerr != nil {
		return 0, rerr
	}
	d, err := parseTime(v)
	if err != nil {
		return 0, rawErrf(v, "is not a valid time for %s: %v", kw, err)
	}
	if positive && d <= 0 {
		return 0, rawErrf(v, "is not a valid time for %s: it must be greater than 0", kw)
	}
	return d, nil
}

func (a *args) int(kw string, lo, hi int) (int, *rawError) {
	v, rerr := a.value(kw)
	if rerr != nil {
		return 0, rerr
	}
	n, err := parseInt(v, lo, hi)
	if err != nil {
		return 0, rawErrf(v, "%v for %s", err, kw)
	}
	return n, nil
}

// end fails if words remain after a complete directive.
func (a *args) end(directive string) *rawError {
	if a.more() {
		return rawErrf(a.words[a.i], "is unexpected after %q", directive)
	}
	return nil
}

// serverKeywords is the accepted subset of HAProxy server options, for error
// messages.
const serverKeywords = "weight, maxconn, slowstart, check, no-check, inter, fastinter, downinter, rise, fall, port"

// parseServerOptions applies the server options in s (endpoint.miscStr or
// endpoint.check.customStr) to o, left to right, as HAProxy does.
func parseServerOptions(s string, o *ServerOptions) *rawError {
	words, rerr := tokenize(s)
	if rerr != nil {
		return rerr
	}
	a := &args{words: words}
	for a.more() {
		kw := a.next()
		var rerr *rawError
		switch kw {
		case "weight":
			o.Weight, rerr = a.int(kw, 0, 256)
		case "maxconn":
			o.MaxConn, rerr = a.int(kw, 0, math.MaxInt32)
		case "slowstart":
			o.SlowStart, rerr = a.time(kw, false)
		case "check":
			o.Check.Enabled = true
		case "no-check":
			o.Check.Enabled = false
		case "inter":
			o.Check.Inter, rerr = a.time(kw, true)
		case "fastinter":
			o.Check.FastInter, rerr = a.time(kw, true)
		case "downinter":
			o.Check.DownInter, rerr = a.time(kw, true)
		case "rise":
			o.Check.Rise, rerr = a.int(kw, 1, math.MaxInt32)
		case "fall":
			o.Check.Fall, rerr = a.int(kw, 1, math.MaxInt32)
		case "port":
			o.Check.Port, rerr = a.int(kw, 1, 65535)
		case "backup":
			rerr = rawErrf(kw, "is not supported: edgeproxy has no backup servers (use weight 0 to keep a server out of rotation)")
		case "timeout":
			rerr = rawErrf(kw, "is not a server option: HAProxy has no per-server timeout; set `timeout check` or `timeout server` in the backend's miscStrs")
		default:
			rerr = rawErrf(kw, "is not a supported server option (edgeproxy accepts: %s)", serverKeywords)
		}
		if rerr != nil {
			return rerr
		}
	}
	return nil
}

// backendTimeouts and frontendTimeouts are the `timeout` names HAProxy allows
// in each section (HAProxy manual 4.1, keyword matrix).
var backendTimeouts = map[string]func(*Timeouts) *time.Duration{
	"connect":         func(t *Timeouts) *time.Duration { return &t.Connect },
	"server":          func(t *Timeouts) *time.Duration { return &t.Server },
	"queue":           func(t *Timeouts) *time.Duration { return &t.Queue },
	"tunnel":          func(t *Timeouts) *time.Duration { return &t.Tunnel },
	"http-request":    func(t *Timeouts) *time.Duration { return &t.HTTPRequest },
	"http-keep-alive": func(t *Timeouts) *time.Duration { return &t.HTTPKeepAlive },
	"check":           func(t *Timeouts) *time.Duration { return &t.Check },
}

var frontendTimeouts = map[string]func(*Timeouts) *time.Duration{
	"client":          func(t *Timeouts) *time.Duration { return &t.Client },
	"http-request":    func(t *Timeouts) *time.Duration { return &t.HTTPRequest },
	"http-keep-alive": func(t *Timeouts) *time.Duration { return &t.HTTPKeepAlive },
}

func parseTimeout(a *args, allowed, other map[string]func(*Timeouts) *time.Duration, section, otherSection string, t *Timeouts) *rawError {
	name, rerr := a.value("timeout")
	if rerr != nil {
		return rerr
	}
	ptr, ok := allowed[name]
	if !ok {
		if _, elsewhere := other[name]; elsewhere {
			return rawErrf(name, "is not a %s timeout: set `timeout %s` in the %s's miscStrs", section, name, otherSection)
		}
		return rawErrf(name, "is not a supported timeout (edgeproxy accepts in a %s: %s)", section, sortedKeys(allowed))
	}
	d, rerr := a.time("timeout "+name, true)
	if rerr != nil {
		return rerr
	}
	*ptr(t) = d
	return a.end("timeout " + name)
}

func sortedKeys(m map[string]func(*Timeouts) *time.Duration) string {
	order := []string{"connect", "client", "server", "queue", "tunnel", "http-request", "http-keep-alive", "check"}
	var out []string
	for _, k := range order {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return strings.Join(out, ", ")
}

const backendKeywords = "timeout, retries, option redispatch, no option redispatch, option httpchk, http-check expect status, balance"

// parseBackendLine applies one backend directive (an element of
// backends[].miscStrs, or customCheck.miscStr) to o.
func parseBackendLine(s string, o *backendOptions) *rawError {
	words, rerr := tokenize(s)
	if rerr != nil || len(words) == 0 {
		return rerr
	}
	a := &args{words: words}
	kw := a.next()
	switch kw {
	case "timeout":
		return parseTimeout(a, backendTimeouts, frontendTimeouts, "backend", "frontend", &o.Timeouts)
	case "retries":
		n, rerr := a.int(kw, 0, math.MaxInt32)
		if rerr != nil {
			return rerr
		}
		o.Retries = n
		return a.end(kw)
	case "balance":
		b, draws, rerr := parseBalanceArgs(a)
		if rerr != nil {
			return rerr
		}
		o.Balance, o.RandomDraws = b, draws
		return nil
	case "option", "no":
		neg := kw == "no"
		if neg {
			if !a.more() || a.next() != "option" {
				return rawErrf(s, "is not supported (edgeproxy accepts: %s)", backendKeywords)
			}
		}
		opt, rerr := a.value("option")
		if rerr != nil {
			return rerr
		}
		switch {
		case opt == "redispatch":
			v := !neg
			o.Redispatch = &v
			return a.end("option redispatch")
		case opt == "httpchk" && !neg:
			hc, rerr := parseHTTPChk(a.words[a.i:])
			if rerr != nil {
				return rerr
			}
			o.httpCheck = hc
			return nil
		}
		return rawErrf(opt, "is not a supported option (edgeproxy accepts: option redispatch, no option redispatch, option httpchk)")
	case "http-check":
		return parseHTTPCheckExpect(a, o)
	case "http-reuse":
		return rawErrf(kw, "is not supported: edgeproxy manages its own backend connection reuse")
	}
	return rawErrf(kw, "is not a supported backend directive (edgeproxy accepts: %s)", backendKeywords)
}

func parseHTTPCheckExpect(a *args, o *backendOptions) *rawError {
	const form = "http-check expect status"
	if !a.more() || a.next() != "expect" || !a.more() || a.next() != "status" {
		return rawErrf(strings.Join(a.words, " "), "is not supported (edgeproxy accepts only `%s <code>`)", form)
	}
	n, rerr := a.int(form, 100, 599)
	if rerr != nil {
		return rerr
	}
	// Applied when the backend is complete: HAProxy does not care whether
	// it comes before or after `option httpchk`.
	o.expectStatus = n
	return a.end(form)
}

// parseHTTPChk reads the arguments of `option httpchk` (also the whole of
// customCheck.httpchkMiscStr): [<uri>] | <method> <uri> [<version>]. The
// version may carry extra header lines (`HTTP/1.1\r\nHost:\ name`), of which
// edgeproxy understands Host only.
func parseHTTPChk(words []string) (*HTTPCheck, *rawError) {
	hc := &HTTPCheck{Method: "OPTIONS", Path: "/", Version: "HTTP/1.0"}
	switch len(words) {
	case 0:
		return hc, nil
	case 1:
		hc.Path = words[0]
	case 2, 3:
		hc.Method, hc.Path = words[0], words[1]
		if len(words) == 3 {
			if rerr := parseHTTPChkVersion(words[2], hc); rerr != nil {
				return nil, rerr
			}
		}
	default:
		return nil, rawErrf(words[3], "is unexpected: httpchk takes [<method>] <uri> [<version>]")
	}
	if !isToken(hc.Method) {
		return nil, rawErrf(hc.Method, "is not an HTTP method")
	}
	if !strings.HasPrefix(hc.Path, "/") || !visibleASCII(hc.Path) {
		return nil, rawErrf(hc.Path, "is not a check URI: it must start with / and hold no blanks or control characters")
	}
	return hc, nil
}

func parseHTTPChkVersion(v string, hc *HTTPCheck) *rawError {
	parts := strings.Split(v, `\r\n`)
	switch parts[0] {
	case "HTTP/1.0", "HTTP/1.1":
		hc.Version = parts[0]
	default:
		return rawErrf(parts[0], "is not a supported HTTP version (HTTP/1.0 or HTTP/1.1)")
	}
	for _, h := range parts[1:] {
		if h == "" {
			continue
		}
		name, val, ok := strings.Cut(h, ":")
		if !ok || !strings.EqualFold(name, "Host") {
			return rawErrf(h, "is not supported: edgeproxy accepts only a Host header in an httpchk version")
		}
		val = strings.TrimSpace(val)
		if val == "" || strings.Contains(val, `\`) {
			return rawErrf(h, "has an invalid Host value")
		}
		hc.Host = val
	}
	return nil
}

// visibleASCII reports whether s holds only printable ASCII other than the
// backslash (RFC 9112 section 3.2: a request target has no whitespace).
func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 9110 section 5.6.2 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// parseBalance reads a balance algorithm (backends[].balance).
func parseBalance(s string) (Balance, int, *rawError) {
	words, rerr := tokenize(s)
	if rerr != nil {
		return "", 0, rerr
	}
	if len(words) == 0 {
		return RoundRobin, 0, nil
	}
	return parseBalanceArgs(&args{words: words})
}

func parseBalanceArgs(a *args) (Balance, int, *rawError) {
	algo, rerr := a.value("balance")
	if rerr != nil {
		return "", 0, rerr
	}
	var b Balance
	draws := 0
	switch {
	case algo == string(RoundRobin), algo == string(StaticRR), algo == string(LeastConn), algo == string(Source), algo == string(Random):
		b = Balance(algo)
	case strings.HasPrefix(algo, "random(") && strings.HasSuffix(algo, ")"):
		n, err := parseInt(algo[len("random("):len(algo)-1], 1, 100)
		if err != nil {
			return "", 0, rawErrf(algo, "has a draw count that %v", err)
		}
		b, draws = Random, n
	case algo == "first":
		return "", 0, rawErrf(algo, "is not supported: edgeproxy does not fill servers up to maxconn in order")
	case algo == "uri", algo == "url_param", strings.HasPrefix(algo, "hdr("), strings.HasPrefix(algo, "rdp-cookie"), algo == "hash":
		return "", 0, rawErrf(algo, "is not supported: hash-based balancing is not implemented (edgeproxy accepts roundrobin, static-rr, leastconn, source, random, random(N))")
	default:
		return "", 0, rawErrf(algo, "is not a balance algorithm edgeproxy knows (roundrobin, static-rr, leastconn, source, random, random(N))")
	}
	if rerr := a.end("balance " + algo); rerr != nil {
		return "", 0, rerr
	}
	return b, draws, nil
}

const frontendKeywords = "timeout client, timeout http-request, timeout http-keep-alive, maxconn"

// parseFrontendLine applies one element of frontends[].miscStrs to o.
func parseFrontendLine(s string, o *FrontendOptions) *rawError {
	words, rerr := tokenize(s)
	if rerr != nil || len(words) == 0 {
		return rerr
	}
	a := &args{words: words}
	kw := a.next()
	switch kw {
	case "timeout":
		return parseTimeout(a, frontendTimeouts, backendTimeouts, "frontend", "backend", &o.Timeouts)
	case "maxconn":
		n, rerr := a.int(kw, 1, math.MaxInt32)
		if rerr != nil {
			return rerr
		}
		o.MaxConn = n
		return a.end(kw)
	}
	return rawErrf(kw, "is not a supported frontend directive (edgeproxy accepts: %s)", frontendKeywords)
}

// parseBindModifier reads frontends[].bindModifier (HAProxy bind options).
func parseBindModifier(s string, o *FrontendOptions) *rawError {
	words, rerr := tokenize(s)
	if rerr != nil {
		return rerr
	}
	for _, w := range words {
		switch w {
		case "accept-proxy":
			o.AcceptProxy = true
		default:
			return rawErrf(w, "is not a supported bind option (edgeproxy accepts: accept-proxy)")
		}
	}
	return nil
}

// parseSticky reads rewriteHttp.sticky.customStr, which replaces Edge-LB's
// cookie line: cookie <name> insert [indirect] [nocache] [httponly] [secure].
func parseSticky(s string) (*StickyOptions, *rawError) {
	words, rerr := tokenize(s)
	if rerr != nil {
		return nil, rerr
	}
	a := &args{words: words}
	if !a.more() || a.next() != "cookie" {
		return nil, rawErrf(s, "is not supported (edgeproxy accepts `cookie <name> insert [indirect] [nocache] [httponly] [secure]`)")
	}
	name, rerr := a.value("cookie")
	if rerr != nil {
		return nil, rerr
	}
	if !isToken(name) {
		return nil, rawErrf(name, "is not a valid cookie name")
	}
	st := &StickyOptions{Cookie: name}
	if !a.more() || a.next() != "insert" {
		return nil, rawErrf(s, "is not supported: edgeproxy implements the cookie insert mode only")
	}
	for a.more() {
		switch w := a.next(); w {
		case "indirect":
			st.Indirect = true
		case "nocache":
			st.NoCache = true
		case "httponly":
			st.HTTPOnly = true
		case "secure":
			st.Secure = true
		default:
			return nil, rawErrf(w, "is not a supported cookie option (indirect, nocache, httponly, secure)")
		}
	}
	return st, nil
}
