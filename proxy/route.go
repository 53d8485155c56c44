package proxy

import (
	"bytes"
	"fmt"
	"regexp"

	"github.com/valyala/fasthttp"
)

// Route is one linkBackend map rule: every condition set must hold
// (Edge-LB ANDs them), and the first matching rule wins.
type Route struct {
	Backend *Backend
	HostEq  string // Host equals, case-insensitive, ":port" tolerated
	HostReg string // Host matches the regex (unanchored, case-insensitive)
	PathBeg string // path starts with
	PathEnd string // path ends with
	PathReg string // path matches the regex (unanchored)
}

type rule struct {
	be       *Backend
	hostEq   []byte
	hostEqRe *regexp.Regexp
	hostReg  *regexp.Regexp
	pathBeg  []byte
	pathEnd  []byte
	pathReg  *regexp.Regexp
}

type router struct {
	rules []rule
	def   *Backend
}

func newRouter(routes []Route, def *Backend) (*router, error) {
	r := &router{def: def}
	for i, rt := range routes {
		if rt.Backend == nil {
			return nil, fmt.Errorf("route %d: no backend", i)
		}
		ru := rule{be: rt.Backend, pathBeg: []byte(rt.PathBeg), pathEnd: []byte(rt.PathEnd)}
		if rt.HostEq != "" {
			// Edge-LB renders hostEq as `req.hdr(host) -i -m reg
			// ^<hostEq>(:.*$)?`: an unescaped, start-anchored,
			// case-insensitive regex. With no end anchor it is a prefix
			// match in which "." matches any byte. Plain host names take
			// that meaning without a regex engine; anything else compiles.
			if isPlainHost(rt.HostEq) {
				ru.hostEq = bytes.ToLower([]byte(rt.HostEq))
			} else {
				re, err := regexp.Compile("(?i)^" + rt.HostEq + "(:.*$)?")
				if err != nil {
					return nil, fmt.Errorf("route %d: hostEq %q: %w", i, rt.HostEq, err)
				}
				ru.hostEqRe = re
			}
		}
		var err error
		if rt.HostReg != "" {
			if ru.hostReg, err = regexp.Compile("(?i)" + rt.HostReg); err != nil {
				return nil, fmt.Errorf("route %d: hostReg %q: %w", i, rt.HostReg, err)
			}
		}
		if rt.PathReg != "" {
			if ru.pathReg, err = regexp.Compile(rt.PathReg); err != nil {
				return nil, fmt.Errorf("route %d: pathReg %q: %w", i, rt.PathReg, err)
			}
		}
		r.rules = append(r.rules, ru)
	}
	return r, nil
}

func isPlainHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// hostPrefix is hostEq's plain-host meaning: host starts with pattern,
// case-insensitively, where "." in pattern matches any byte.
func hostPrefix(host, pattern []byte) bool {
	if len(host) < len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p == '.' {
			continue
		}
		if host[i]|0x20 != p {
			if host[i] != p {
				return false
			}
		}
	}
	return true
}

func (r *router) route(ctx *fasthttp.RequestCtx) *Backend {
	if len(r.rules) == 0 {
		return r.def
	}
	host := ctx.Request.Header.Host()
	path := requestPath(ctx.Request.Header.RequestURI())
	for i := range r.rules {
		ru := &r.rules[i]
		if ru.hostEq != nil && !hostPrefix(host, ru.hostEq) {
			continue
		}
		if ru.hostEqRe != nil && !ru.hostEqRe.Match(host) {
			continue
		}
		if ru.hostReg != nil && !ru.hostReg.Match(host) {
			continue
		}
		if len(ru.pathBeg) > 0 && !bytes.HasPrefix(path, ru.pathBeg) {
			continue
		}
		if len(ru.pathEnd) > 0 && !bytes.HasSuffix(path, ru.pathEnd) {
			continue
		}
		if ru.pathReg != nil && !ru.pathReg.Match(path) {
			continue
		}
		return ru.be
	}
	return r.def
}

// requestPath is HAProxy's "path" sample: the request target without its
// query string, and without scheme and authority in absolute form, as sent
// (no decoding or normalisation).
func requestPath(uri []byte) []byte {
	if len(uri) > 0 && uri[0] != '/' {
		if i := bytes.Index(uri, []byte("://")); i >= 0 {
			rest := uri[i+3:]
			if j := bytes.IndexByte(rest, '/'); j >= 0 {
				uri = rest[j:]
			} else {
				return []byte("/")
			}
		}
	}
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		uri = uri[:i]
	}
	return uri
}
