package proxy

import (
	"github.com/valyala/fasthttp"
)

// cleanResponseHead removes from a backend response the hop-by-hop fields
// and those its Connection header nominates (RFC 9110 §7.6.1), matched
// case-insensitively, and forgets the backend's "Connection: close": that
// concerns the backend connection only, which the caller retires. keep lists
// the fields of a 101 answer that must survive (Connection, Upgrade).
func cleanResponseHead(h *fasthttp.ResponseHeader, upgraded bool) {
	var conn connOptions
	var drop [maxNominated][]byte
	n := 0
	h.VisitAll(func(k, v []byte) {
		if equalFold(k, hConnection) || equalFold(k, hProxyConnection) {
			conn.add(v)
		}
	})
	h.VisitAll(func(k, v []byte) {
		if n == len(drop) {
			return
		}
		if upgraded && (equalFold(k, hConnection) || equalFold(k, hUpgrade)) {
			return
		}
		if equalFold(k, hTransferEnc) || equalFold(k, hContentLength) {
			// Framing is kept in fasthttp's own fields and regenerated.
			return
		}
		if isHopByHop(k) || conn.nominates(k) {
			drop[n] = k
			n++
		}
	})
	for i := 0; i < n; i++ {
		h.DelBytes(drop[i])
	}
	h.ResetConnectionClose()
}
