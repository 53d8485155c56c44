package stats

import (
	"net"
	"net/http"
	"sync/atomic"
)

// selfStats are the stats listener's own counters. HAProxy reports its
// "listen stats" section like any proxy, as a FRONTEND and a BACKEND row
// named "stats"; these counters fill them.
type selfStats struct {
	conns    atomic.Int64
	accepted atomic.Uint64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64
	// Every request the listener answered, and its status class.
	requests  atomic.Uint64
	active    atomic.Int64 // requests being answered
	responses [6]atomic.Uint64
}

const selfName = "stats"

// group builds the listener's rows. Every request it answers is
// intercepted at the frontend (the stats page, the exporter, the monitor
// URI), so, as in HAProxy, its BACKEND counts no session, request or
// response, only the frontend's bytes.
func (st *selfStats) group(iid int) *group {
	requests := st.requests.Load()
	accepted := st.accepted.Load()
	conns := max(st.conns.Load(), 0)
	bytesIn, bytesOut := st.bytesIn.Load(), st.bytesOut.Load()
	fe := newRow(typeFrontend, selfName, "FRONTEND", iid, 0)
	fe.zero(colDreq, colDresp, colRateLim, colCompIn, colCompOut, colCompByp,
		colCompRsp, colDcon, colDses, colWrew, colCacheLookups, colCacheHits,
		colEint, colH1SplicedBytesIn, colH1SplicedBytesOut)
	zeroSSL(fe)
	zeroH2(fe)
	fe.set(colScur, conns)
	fe.setU(colStot, accepted)
	fe.setU(colConnTot, accepted)
	fe.setU(colBin, bytesIn)
	fe.setU(colBout, bytesOut)
	fe.status = "OPEN"
	fe.setU(colReqTot, requests)
	fe.setU(colIntercepted, requests)
	setClasses(fe, &st.responses)
	fe.set(colH1OpenConnections, conns)
	fe.set(colH1OpenStreams, max(st.active.Load(), 0))
	fe.setU(colH1TotalConnections, accepted)
	fe.setU(colH1TotalStreams, requests)
	fe.setU(colH1BytesIn, bytesIn)
	fe.setU(colH1BytesOut, bytesOut)

	be := newRow(typeBackend, selfName, "BACKEND", iid, 0)
	be.zero(colQcur, colQmax, colScur, colStot, colDreq, colDresp, colEcon,
		colEresp, colWretr, colWredis, colWeight, colAct, colBck, colLbtot,
		colReqTot, colCompIn, colCompOut, colCompByp, colCompRsp, colWrew,
		colConnect, colReuse, colCacheLookups, colCacheHits, colEint,
		colUweight, colAggServerStatus, colAggServerCheckStatus,
		colAggCheckStatus)
	for c := colHrsp1xx; c <= colHrspOther; c++ {
		be.set(c, 0)
	}
	for c := colH1OpenConnections; c <= colH1SplicedBytesOut; c++ {
		be.set(c, 0)
	}
	zeroSSL(be)
	zeroH2(be)
	be.setU(colBin, bytesIn)
	be.setU(colBout, bytesOut)
	be.status = "UP"
	return &group{Name: selfName, Frontend: fe, Backend: be, IsListen: true}
}

func setClasses(r *row, c *[6]atomic.Uint64) {
	for i := 1; i <= 5; i++ {
		r.setU(colHrsp1xx+i-1, c[i].Load())
	}
	r.setU(colHrspOther, c[0].Load())
}

func statusClass(code int) int {
	if c := code / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

// countRequests wraps the listener's handler to count requests by status
// class.
func (st *selfStats) countRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.requests.Add(1)
		st.active.Add(1)
		defer st.active.Add(-1)
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		st.responses[statusClass(rec.code)].Add(1)
	})
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// connState counts the listener's connections.
func (st *selfStats) connState(_ net.Conn, cs http.ConnState) {
	switch cs {
	case http.StateNew:
		st.conns.Add(1)
		st.accepted.Add(1)
	case http.StateClosed, http.StateHijacked:
		st.conns.Add(-1)
	}
}

// countingListener counts the bytes of every accepted connection.
type countingListener struct {
	net.Listener
	st *selfStats
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, st: l.st}, nil
}

type countingConn struct {
	net.Conn
	st *selfStats
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.st.bytesIn.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.st.bytesOut.Add(uint64(n))
	return n, err
}
