package stats

import (
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// Where each value comes from. S is a server's proxy.ServerStats, B a
// backend's proxy.BackendStats, F a frontend's proxy.FrontendStats; Σ sums
// the column over the backend's servers, ΣB over the backends the frontend
// routes to (Options.FrontendBackends), H what Options.ServerHealth reports
// (empty without it). "0" marks a counter edgeproxy never moves because it
// lacks the feature (deny rules, compression, cache, queueing, TLS, HTTP/2,
// header-rewrite failures, internal errors); "–" is left empty because
// edgeproxy does not track it, or HAProxy leaves it empty too; "rates"
// comes from the once-a-second sampler (rates.go).
//
//	column            FRONTEND                   BACKEND                        server
//	qcur, qmax        –                          0                              0
//	scur              F.Conns + F.Tunnels        Σ scur                         S.Active
//	smax              rates: max sampled scur    rates                          rates
//	slim              –                          –                              –
//	stot              F.Accepted                 Σ stot + B.NoServer            S.Requests
//	bin / bout        ΣB bin / bout              Σ                              S.BytesIn / S.BytesOut
//	dreq, dresp       0                          0                              dresp 0
//	ereq              F.Refused                  –                              –
//	econ              –                          Σ econ + B.NoServer            S.ConnErrors
//	eresp             –                          Σ                              S.RespErrors
//	wretr / wredis    –                          Σ                              S.Retries / S.Redispatch
//	status            OPEN                       UP or DOWN                     UP, DRAIN, DOWN, "no check"
//	                                                                            (H: any)
//	chkfail, chkdown  –                          –                              H: CheckFailures, Downs
//	lastchg, downtime –                          –                              H: LastChange, Downtime
//	check_*           –                          –                              H: status, code, duration,
//	                                                                            desc, rise, fall, health
//	last_chk          –                          –                              H: CheckDetail
//	weight, uweight   –                          Σ over usable servers          Weight()
//	act / bck         –                          usable servers / 0             1 / 0
//	pid, iid, sid     1, position, 0             1, position, 0                 1, backend's, position
//	lbtot             –                          Σ                              S.Requests + S.ConnErrors
//	rate, rate_max    rates of stot              rates of stot                  rates of stot
//	rate_lim          0 (no limit)               –                              –
//	hrsp_1xx..5xx     F.Responses[1..5]          Σ + B.LocalResponses           S.Responses[1..5]
//	hrsp_other        F.Responses[0]             Σ + B.LocalResponses[0]        S.Responses[0]
//	req_rate(_max)    rates of req_tot           –                              –
//	req_tot           F.Requests                 Σ + B.NoServer                 S.Requests
//	comp_*            0                          0                              –
//	lastsess          –                          rates: last stot increase      rates
//	mode              http                       http                           http
//	conn_rate(_max)   rates of conn_tot          –                              –
//	conn_tot          F.Accepted                 –                              –
//	intercepted       0                          –                              –
//	dcon, dses        0                          –                              –
//	wrew              0                          0                              0
//	connect / reuse   –                          Σ                              S.NewConns + S.ConnErrors / S.ReusedConns
//	cache_*           0                          0                              –
//	eint              0                          0                              0
//	srv_icur          –                          –                              IdleConns()
//	safe_conn_cur     –                          –                              IdleConns() (every idle one is reused)
//	idle_conn_cur     –                          –                              0
//	used_conn_cur     –                          –                              S.Active
//	agg_*             –                          0 (HAProxy prints 0 too)       –
//	-                 "-"                        "-"                            "-"
//	ssl_*             0                          0                              0
//	h2_*              0                          0                              –
//	h1_open_conn...   scur                       Σ used_conn_cur + srv_icur     –
//	h1_open_streams   F.Tunnels + ΣB scur        Σ scur                         –
//	h1_total_conn...  F.Accepted                 Σ connect                      –
//	h1_total_streams  F.Requests                 Σ lbtot                        –
//	h1_bytes_in/out   ΣB bin / bout              Σ bout / bin (from servers)    –
//	h1_spliced_*      0                          0                              –
//
// The stats listener's own lines (self.go) count its connections, requests
// and bytes at the FRONTEND; its BACKEND, as HAProxy's, counts no session,
// request or response (every request is intercepted at the frontend), only
// the frontend's bytes.
//
// A server is "usable" when its status is UP or "no check" (UP, reported
// by Options.ServerHealth without active checks): Available(), weight
// above 0 and not DOWN, DRAIN or MAINT by Options.ServerHealth. A backend
// is UP when some server is usable or it has no server at all (as HAProxy
// reports a backend without server lines). Every other column is empty.
//
// Frontend columns marked ΣB are only filled when the frontend's backends
// are known: from Options.FrontendBackends, or, without it, when there is
// exactly one frontend (it then owns every backend). A backend that several
// frontends route to counts fully in each of them: the proxy keeps no
// per-frontend request counters yet.

// snapshot reads every counter once and builds the report, in HAProxy's
// order: the stats listener, the frontends, the backends.
func (s *Server) snapshot(now time.Time) []*group {
	gs := s.build(now)
	s.rates.apply(gs, now)
	return gs
}

// build reads the counters into groups, without rates.
func (s *Server) build(now time.Time) []*group {
	bd := builder{health: s.opts.ServerHealth, now: now}
	var fes []*proxy.Frontend
	var bes []*proxy.Backend
	if s.opts.Frontends != nil {
		fes = s.opts.Frontends()
	}
	if s.opts.Backends != nil {
		bes = s.opts.Backends()
	}
	gs := make([]*group, 0, 1+len(fes)+len(bes))
	gs = append(gs, s.self.group(1))

	beGroups := make([]*group, len(bes))
	byBackend := make(map[*proxy.Backend]*group, len(bes))
	for i, b := range bes {
		g := bd.backendGroup(b, 2+len(fes)+i)
		beGroups[i] = g
		byBackend[b] = g
	}
	for i, f := range fes {
		var linked []*proxy.Backend
		known := true
		switch {
		case s.opts.FrontendBackends != nil:
			linked = s.opts.FrontendBackends(f)
		case len(fes) == 1:
			linked = bes
		default:
			known = false
		}
		gs = append(gs, bd.frontendGroup(f, 2+i, known, linked, byBackend))
	}
	return append(gs, beGroups...)
}

// builder reads proxies into rows.
type builder struct {
	health func(*proxy.Server) (ServerHealth, bool)
	now    time.Time
}

// serverState is a server's status as the CSV names it. Health checking
// (Options.ServerHealth, when reported) tells DOWN from DRAIN and MAINT;
// without it only Available() is known, so a draining server shows DOWN. A
// server is never shown UP while it takes no new requests, an available
// one with weight 0 is DRAIN, and one that would be UP but has no active
// checks is "no check", as in HAProxy.
func serverState(s *proxy.Server, h ServerHealth, reported bool) string {
	switch {
	case h.State != "" && h.State != "UP":
		return h.State
	case !s.Available():
		return "DOWN"
	case s.Weight() == 0:
		return "DRAIN"
	case reported && !h.Checked:
		return "no check"
	}
	return "UP"
}

// usable reports whether a server status takes new requests: UP, or UP
// without checks.
func usable(status string) bool { return status == "UP" || status == "no check" }

func (bd builder) serverRow(b *proxy.Backend, s *proxy.Server, iid, sid int) *row {
	st := &s.Stats
	r := newRow(typeServer, b.Name, s.Name, iid, sid)
	active := max(st.Active.Load(), 0)
	requests := st.Requests.Load()
	connErrors := st.ConnErrors.Load()
	idle := int64(s.IdleConns())
	weight := int64(s.Weight())

	r.zero(colQcur, colQmax, colDresp, colWrew, colIdleConnCur, colEint)
	zeroSSL(r)
	r.set(colScur, active)
	r.setU(colStot, requests)
	r.setU(colBin, st.BytesIn.Load())
	r.setU(colBout, st.BytesOut.Load())
	r.setU(colEcon, connErrors)
	r.setU(colEresp, st.RespErrors.Load())
	r.setU(colWretr, st.Retries.Load())
	r.setU(colWredis, st.Redispatch.Load())
	var hs ServerHealth
	var reported bool
	if bd.health != nil {
		if hs, reported = bd.health(s); reported {
			fillHealth(r, hs, bd.now)
		}
	}
	r.status = serverState(s, hs, reported)
	r.set(colWeight, weight)
	r.set(colAct, 1)
	r.set(colBck, 0)
	r.setU(colLbtot, requests+connErrors)
	for i := 1; i <= 5; i++ {
		r.setU(colHrsp1xx+i-1, st.Responses[i].Load())
	}
	r.setU(colHrspOther, st.Responses[0].Load())
	r.setU(colReqTot, requests)
	r.setU(colConnect, st.NewConns.Load()+connErrors)
	r.setU(colReuse, st.ReusedConns.Load())
	r.set(colSrvIcur, idle)
	r.set(colSafeConnCur, idle)
	r.set(colUsedConnCur, active)
	r.set(colUweight, weight)
	return r
}

func (bd builder) backendGroup(b *proxy.Backend, iid int) *group {
	servers := b.Servers()
	g := &group{Name: b.Name, Servers: make([]*row, len(servers))}
	var weight, act int64
	for i, s := range servers {
		g.Servers[i] = bd.serverRow(b, s, iid, i+1)
		if usable(g.Servers[i].status) { // available, weight above 0
			weight += int64(s.Weight())
			act++
		}
	}
	noServer := int64(b.Stats.NoServer.Load())
	r := newRow(typeBackend, b.Name, "BACKEND", iid, 0)
	sr := g.Servers
	r.zero(colQcur, colQmax, colDreq, colDresp, colWrew, colCompIn, colCompOut,
		colCompByp, colCompRsp, colCacheLookups, colCacheHits, colEint,
		colAggServerStatus, colAggServerCheckStatus, colAggCheckStatus)
	zeroSSL(r)
	zeroH2(r)
	r.set(colScur, sum(sr, colScur))
	r.set(colStot, sum(sr, colStot)+noServer)
	r.set(colBin, sum(sr, colBin))
	r.set(colBout, sum(sr, colBout))
	r.set(colEcon, sum(sr, colEcon)+noServer)
	for _, c := range []int{colEresp, colWretr, colWredis, colLbtot, colConnect, colReuse,
		colHrsp1xx, colHrsp2xx, colHrsp3xx, colHrsp4xx, colHrsp5xx, colHrspOther} {
		r.set(c, sum(sr, c))
	}
	local := &b.Stats.LocalResponses
	for i, c := range []int{colHrspOther, colHrsp1xx, colHrsp2xx, colHrsp3xx, colHrsp4xx, colHrsp5xx} {
		r.set(c, sum(sr, c)+int64(local[i].Load()))
	}
	r.set(colReqTot, sum(sr, colReqTot)+noServer)
	// The h1 module counts the backend's side: connections to servers
	// (in use or idle) and the requests sent over them; bytes in come
	// from the servers.
	r.set(colH1OpenConnections, sum(sr, colUsedConnCur)+sum(sr, colSrvIcur))
	r.set(colH1OpenStreams, sum(sr, colScur))
	r.set(colH1TotalConnections, sum(sr, colConnect))
	r.set(colH1TotalStreams, sum(sr, colLbtot))
	r.set(colH1BytesIn, sum(sr, colBout))
	r.set(colH1BytesOut, sum(sr, colBin))
	r.zero(colH1SplicedBytesIn, colH1SplicedBytesOut)
	status := "DOWN"
	if weight > 0 || len(servers) == 0 {
		status = "UP"
	}
	r.status = status
	r.set(colWeight, weight)
	r.set(colUweight, weight)
	r.set(colAct, act)
	r.set(colBck, 0)
	g.Backend = r
	return g
}

// frontendGroup builds a frontend's row. When known, linked are the
// backends it routes to; their request, response and byte counters are
// attributed to it.
func (bd builder) frontendGroup(f *proxy.Frontend, iid int, known bool, linked []*proxy.Backend, byBackend map[*proxy.Backend]*group) *group {
	st := &f.Stats
	accepted := st.Accepted.Load()
	refused := int64(st.Refused.Load())
	tunnels := max(st.Tunnels.Load(), 0)
	conns := max(st.Conns.Load(), 0) + tunnels
	requests := st.Requests.Load()
	r := newRow(typeFrontend, f.Name, "FRONTEND", iid, 0)
	r.zero(colDreq, colDresp, colRateLim, colCompIn, colCompOut, colCompByp,
		colCompRsp, colIntercepted, colDcon, colDses, colWrew, colCacheLookups,
		colCacheHits, colEint)
	zeroSSL(r)
	zeroH2(r)
	r.set(colScur, conns)
	r.setU(colStot, accepted)
	r.setU(colConnTot, accepted)
	r.set(colEreq, refused)
	r.status = "OPEN"
	r.setU(colReqTot, requests)
	r.set(colH1OpenConnections, conns)
	r.setU(colH1TotalConnections, accepted)
	r.setU(colH1TotalStreams, requests)
	r.zero(colH1SplicedBytesIn, colH1SplicedBytesOut)
	for i, c := range []int{colHrspOther, colHrsp1xx, colHrsp2xx, colHrsp3xx, colHrsp4xx, colHrsp5xx} {
		r.setU(c, st.Responses[i].Load())
	}
	if known {
		var bes []*row
		seen := make(map[*proxy.Backend]bool, len(linked))
		for _, b := range linked {
			if b == nil || seen[b] {
				continue
			}
			seen[b] = true
			g := byBackend[b]
			if g == nil { // not among Backends(): read it anyway
				g = bd.backendGroup(b, 0)
			}
			bes = append(bes, g.Backend)
		}
		r.set(colBin, sum(bes, colBin))
		r.set(colBout, sum(bes, colBout))
		// Requests in flight are known only at the backends; a tunnel
		// stays one open stream.
		r.set(colH1OpenStreams, tunnels+sum(bes, colScur))
		r.set(colH1BytesIn, sum(bes, colBin))
		r.set(colH1BytesOut, sum(bes, colBout))
	}
	return &group{Name: f.Name, Frontend: r}
}

// zeroSSL sets the ssl module's counters, which HAProxy prints on every
// line: edgeproxy terminates no TLS.
func zeroSSL(r *row) { r.zero(colSSLSess, colSSLReusedSess, colSSLFailedHandshake) }

// zeroH2 sets the h2 module's counters of a FRONTEND or BACKEND line:
// edgeproxy speaks HTTP/1 only.
func zeroH2(r *row) {
	for c := colH2HeadersRcvd; c <= colH2BackendTotalStreams; c++ {
		r.set(c, 0)
	}
}
