package proxy

import (
	"bytes"
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// client is the address of the client a request comes from, as "source"
// balancing and the access log see it, with its port when known. It is the
// peer (or the PROXY protocol source), except behind a trusted HTTP load
// balancer (AWS ALB, a CLB HTTP listener: FrontendConfig.TrustForwardedFor)
// where it is the last address of the last X-Forwarded-For field line: the
// one that balancer appended for the client it talked to. What is forwarded
// does not change: X-Forwarded-For still gets the peer appended, as
// HAProxy's "option forwardfor" does.
func (f *Frontend) client(ctx *fasthttp.RequestCtx) (netip.Addr, int) {
	peer, port := clientOf(ctx)
	if len(f.trusted) == 0 || !f.trusts(peer) {
		return peer, port
	}
	var last []byte
	s := headerScanner{b: ctx.Request.Header.RawHeaders()}
	for s.next() {
		if equalFold(s.key, hXForwardedFor) {
			last = s.value
		}
	}
	if i := bytes.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	if a, ok := parseIP(trimOWS(last)); ok {
		return a, 0
	}
	return peer, port
}

func (f *Frontend) trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range f.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseIP parses an IPv4 address without allocating, and anything else
// (IPv6, rare behind a balancer) through netip.
func parseIP(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	var v4 [4]byte
	part, val, digits := 0, 0, 0
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			val = val*10 + int(c-'0')
			digits++
			if val > 255 || digits > 3 {
				goto other
			}
		case c == '.' && digits > 0 && part < 3:
			v4[part] = byte(val)
			part, val, digits = part+1, 0, 0
		default:
			goto other
		}
	}
	if part == 3 && digits > 0 {
		v4[3] = byte(val)
		return netip.AddrFrom4(v4), true
	}
other:
	a, err := netip.ParseAddr(string(b))
	return a, err == nil
}

// clientOf is the peer's address and port (from the PROXY header with
// accept-proxy).
func clientOf(ctx *fasthttp.RequestCtx) (netip.Addr, int) {
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		return clientAddrFrom(a.IP), a.Port
	}
	return netip.Addr{}, 0
}
