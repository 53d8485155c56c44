package proxy

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Balance is a balancing algorithm, named as in HAProxy and Edge-LB.
type Balance string

// The supported algorithms.
const (
	RoundRobin Balance = "roundrobin"
	StaticRR   Balance = "static-rr"
	LeastConn  Balance = "leastconn"
	Source     Balance = "source"
	Random     Balance = "random"
)

// ServerSpec describes one server of a backend, as discovery or the static
// configuration provides it.
type ServerSpec struct {
	Name   string // stats name, e.g. agentip_10.0.1.128_10006
	Addr   string // host:port to dial
	Weight int    // 0..256; 0 takes no traffic
	// Draining servers take no new requests; those in flight finish.
	Draining bool
	// Meta is passed to BackendOptions.NewHealth untouched (for example the
	// health check settings of the service the server came from).
	Meta any
}

// Server is one backend server. It lives as long as some server set or some
// in-flight request refers to it; a server that leaves the set is retired:
// its idle connections are closed and the ones in use are closed when their
// request ends.
type Server struct {
	Name   string
	Addr   string
	weight atomic.Int64

	pool    connPool
	backend *Backend

	// down is set by health checking, draining by discovery; a server takes
	// new requests only when both are false.
	down     atomic.Bool
	draining atomic.Bool
	retired  atomic.Bool

	// health is the server's health checking, set before the server is
	// published in a set and never changed; nil means always healthy.
	health Health

	Stats ServerStats
}

// Health is what a server's health checking offers the request path. Every
// method must be cheap, lock-free and allocation-free: they run per request.
type Health interface {
	// Up reports whether the server may take new requests.
	Up() bool
	// ReportFailure tells of a failure on live traffic (connect refused or
	// timed out, a reset before the response), for passive ejection.
	ReportFailure()
	// ReportSuccess tells of a request that got a response.
	ReportSuccess()
}

// ServerStats are a server's counters, updated lock-free per request.
type ServerStats struct {
	Active      atomic.Int64  // requests in flight
	Requests    atomic.Uint64 // requests sent
	ConnErrors  atomic.Uint64 // failed connects
	RespErrors  atomic.Uint64 // broken or missing responses
	Retries     atomic.Uint64
	Redispatch  atomic.Uint64
	Responses   [6]atomic.Uint64 // by status class: other, 1xx..5xx
	BytesIn     atomic.Uint64
	BytesOut    atomic.Uint64
	NewConns    atomic.Uint64
	ReusedConns atomic.Uint64
}

// SetDown marks the server down (health checks failed) or up.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// Available reports whether the server takes new requests.
func (s *Server) Available() bool {
	return !s.down.Load() && !s.draining.Load() && !s.retired.Load() && (s.health == nil || s.health.Up())
}

// Health returns the server's health checking, or nil.
func (s *Server) Health() Health { return s.health }

func (s *Server) reportFailure() {
	if s.health != nil {
		s.health.ReportFailure()
	}
}

func (s *Server) reportSuccess() {
	if s.health != nil {
		s.health.ReportSuccess()
	}
}

// Weight is the configured weight.
func (s *Server) Weight() int { return int(s.weight.Load()) }

// serverSet is an immutable snapshot of a backend's servers. The request
// path reads it through one atomic pointer load.
type serverSet struct {
	servers []*Server
	// sched interleaves servers in proportion to their weights (smooth
	// weighted round-robin, computed once per set), so every algorithm picks
	// with an index and no lock.
	sched []*Server
	next  atomic.Uint64
}

// Backend is a named group of servers with a balancing algorithm.
type Backend struct {
	Name    string
	balance Balance
	opts    *BackendOptions
	set     atomic.Pointer[serverSet]
	rw      rewrite
	dialer  net.Dialer
	Stats   BackendStats

	janitor sync.Once
	stop    chan struct{}
	closed  sync.Once
}

// BackendStats are a backend's own counters.
type BackendStats struct {
	NoServer atomic.Uint64 // requests answered 503 for want of a server
	Swaps    atomic.Uint64 // server sets swapped in (SetServers calls)
	// LocalResponses counts the responses edgeproxy wrote itself for the
	// backend (503 without a server, 502, 504), by status class.
	LocalResponses [6]atomic.Uint64
	// ResponseTime is a histogram of the time from sending a request to a
	// server to receiving its response head (HAProxy's Tr): counts per
	// bucket of ResponseTimeBuckets (the last one unbounded) and the sum.
	ResponseTime    [len(ResponseTimeBuckets) + 1]atomic.Uint64
	ResponseTimeSum atomic.Int64 // nanoseconds
}

// ResponseTimeBuckets are the upper bounds of the response time histogram,
// Prometheus' default buckets.
var ResponseTimeBuckets = [...]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
	2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// observeResponse adds one response time to the histogram: a short scan and
// two atomic adds.
func (st *BackendStats) observeResponse(d time.Duration) {
	i := 0
	for i < len(ResponseTimeBuckets) && d > ResponseTimeBuckets[i] {
		i++
	}
	st.ResponseTime[i].Add(1)
	st.ResponseTimeSum.Add(int64(d))
}

// BackendOptions are the per-backend forwarding settings.
type BackendOptions struct {
	Balance    Balance
	Retries    int  // connect retries (HAProxy "retries", default 3)
	Redispatch bool // retry on another server (HAProxy "option redispatch")
	Timeouts   Timeouts
	Rewrite    Rewrite
	// MaxIdlePerServer bounds the pooled idle connections of each server.
	MaxIdlePerServer int
	// NewHealth, when set, gives each new server its health checking; it
	// runs in SetServers before the server takes traffic.
	NewHealth func(*Server, ServerSpec) Health
	// ServerRemoved, when set, is told of each server that left the set
	// (for example to stop its health checks).
	ServerRemoved func(*Server)
}

// Rewrite holds Edge-LB's rewriteHttp.request switches.
type Rewrite struct {
	ForwardFor     bool   // append X-Forwarded-For
	ForwardedPort  bool   // set X-Forwarded-Port
	ForwardedProto bool   // add X-Forwarded-Proto: https on TLS frontends
	Host           string // set Host when not empty
}

// NewBackend returns a backend without servers.
func NewBackend(name string, opts BackendOptions) *Backend {
	if opts.Balance == "" {
		opts.Balance = RoundRobin
	}
	if opts.MaxIdlePerServer <= 0 {
		opts.MaxIdlePerServer = 256
	}
	opts.Timeouts = opts.Timeouts.withDefaults()
	b := &Backend{Name: name, balance: opts.Balance, opts: &opts, stop: make(chan struct{})}
	b.rw = rewrite{
		forwardFor:     opts.Rewrite.ForwardFor,
		forwardedPort:  opts.Rewrite.ForwardedPort,
		forwardedProto: opts.Rewrite.ForwardedProto,
		host:           []byte(opts.Rewrite.Host),
	}
	b.dialer = net.Dialer{Timeout: opts.Timeouts.Connect, KeepAlive: 30 * time.Second}
	b.set.Store(&serverSet{})
	return b
}

// Close stops the backend's housekeeping and closes its idle connections.
func (b *Backend) Close() {
	b.closed.Do(func() { close(b.stop) })
	for _, s := range b.Servers() {
		s.pool.closeIdle(0)
	}
}

// sweep closes, once a second, pooled connections idle for longer than
// timeout backend-idle, so they never outlive the server's own keep-alive
// timeout and turn into a race at reuse.
func (b *Backend) sweep() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-t.C:
			cutoff := now.Add(-b.opts.Timeouts.BackendIdle).UnixNano()
			for _, s := range b.Servers() {
				s.pool.closeIdle(cutoff)
			}
		}
	}
}

// Servers returns the current server set; the slice must not be modified.
func (b *Backend) Servers() []*Server { return b.set.Load().servers }

// SetServers swaps in a new server set. Servers whose address is already
// known keep their connection pool and counters; servers that left are
// retired: their idle connections close now and requests in flight on them
// finish. Requests never see a partial set.
func (b *Backend) SetServers(specs []ServerSpec) {
	b.janitor.Do(func() { go b.sweep() })
	old := b.set.Load()
	known := make(map[string]*Server, len(old.servers))
	for _, s := range old.servers {
		known[s.Addr] = s
	}
	ns := &serverSet{servers: make([]*Server, 0, len(specs))}
	for _, sp := range specs {
		s := known[sp.Addr]
		if s != nil {
			delete(known, sp.Addr)
		} else {
			s = &Server{Name: sp.Name, Addr: sp.Addr, backend: b}
			s.pool.init(b.opts.MaxIdlePerServer)
			if b.opts.NewHealth != nil {
				s.health = b.opts.NewHealth(s, sp)
			}
		}
		s.weight.Store(int64(sp.Weight))
		s.draining.Store(sp.Draining)
		ns.servers = append(ns.servers, s)
	}
	ns.sched = schedule(ns.servers)
	b.set.Store(ns)
	b.Stats.Swaps.Add(1)
	for _, s := range known {
		s.retired.Store(true)
		s.pool.closeIdle(0)
		if b.opts.ServerRemoved != nil {
			b.opts.ServerRemoved(s)
		}
	}
}

// schedule interleaves servers by weight with the smooth weighted
// round-robin sequence (each step, every server gains its weight and the
// richest pays the total), so weights 5,1,1 give a a b a c a a rather than
// five a's in a row.
func schedule(servers []*Server) []*Server {
	total := 0
	w := make([]int, len(servers))
	for i, s := range servers {
		w[i] = s.Weight()
		total += w[i]
	}
	if total == 0 {
		return nil
	}
	cur := make([]int, len(servers))
	out := make([]*Server, 0, total)
	for range total {
		best := -1
		for i := range servers {
			cur[i] += w[i]
			if w[i] > 0 && (best < 0 || cur[i] > cur[best]) {
				best = i
			}
		}
		cur[best] -= total
		out = append(out, servers[best])
	}
	return out
}

// pick chooses a server for one request, never avoid unless it is the only
// one available. hash is the client address hash used by "source".
func (b *Backend) pick(hash uint64, avoid *Server) *Server {
	set := b.set.Load()
	n := uint64(len(set.sched))
	if n == 0 {
		return nil
	}
	var start uint64
	switch b.balance {
	case LeastConn:
		return set.leastConn(avoid)
	case Source:
		start = hash % n
	case Random:
		return set.twoChoices(avoid)
	default:
		start = set.next.Add(1) - 1
		s, skipped := set.walkN(start, avoid)
		if skipped > 0 {
			// The slots of unavailable servers were passed over: move the
			// sequence past them too, so the next request does not land on
			// the same server again. HAProxy takes a down server out of
			// its round-robin tree; this keeps the same order
			// (s1 s2 s3 s1 s2 s3 with s4 down, not s1 s2 s3 s1 s1 s2).
			set.next.Add(uint64(skipped))
		}
		return s
	}
	return set.walk(start, avoid)
}

// walk returns the first available server of the schedule from start on.
func (set *serverSet) walk(start uint64, avoid *Server) *Server {
	s, _ := set.walkN(start, avoid)
	return s
}

// walkN is walk that also tells how many slots it passed over.
func (set *serverSet) walkN(start uint64, avoid *Server) (*Server, int) {
	n := uint64(len(set.sched))
	var fallback *Server
	for i := uint64(0); i < n; i++ {
		s := set.sched[(start+i)%n]
		if !s.Available() {
			continue
		}
		if s == avoid {
			fallback = s
			continue
		}
		return s, int(i)
	}
	return fallback, int(n)
}

// leastConn picks the available server with the fewest requests in flight
// relative to its weight, starting the scan at a rotating offset so ties
// spread.
func (set *serverSet) leastConn(avoid *Server) *Server {
	n := len(set.servers)
	off := int(set.next.Add(1) % uint64(n))
	var best, fallback *Server
	var bestLoad, bestW int64
	for i := range n {
		s := set.servers[(off+i)%n]
		w := s.weight.Load()
		if !s.Available() || w == 0 {
			continue
		}
		if s == avoid {
			fallback = s
			continue
		}
		// Compare active/weight without division: a/wa < b/wb.
		load := s.Stats.Active.Load()
		if best == nil || load*bestW < bestLoad*w {
			best, bestLoad, bestW = s, load, w
		}
	}
	if best == nil {
		return fallback
	}
	return best
}

// twoChoices is "random(2)": draw two servers by weight, keep the less
// loaded (power of two choices).
func (set *serverSet) twoChoices(avoid *Server) *Server {
	n := uint64(len(set.sched))
	a := set.walk(rand.Uint64N(n), avoid)
	b := set.walk(rand.Uint64N(n), avoid)
	if a == nil || b == nil {
		if a == nil {
			return b
		}
		return a
	}
	if b.Stats.Active.Load()*a.weight.Load() < a.Stats.Active.Load()*b.weight.Load() {
		return b
	}
	return a
}

// ipHash hashes a client address for "source" balancing (FNV-1a).
func ipHash(a netip.Addr) uint64 {
	ip := a.Unmap().As16()
	h := uint64(14695981039346656037)
	for _, c := range ip {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// ServerName builds Edge-LB's server name: <type>_<host>_<port>.
func ServerName(kind, host string, port int) string {
	return kind + "_" + host + "_" + strconv.Itoa(port)
}

// Timeouts are the timeouts of one frontend or backend, named as HAProxy's.
type Timeouts struct {
	Connect     time.Duration // dialing a server (3 s)
	Client      time.Duration // client inactivity (30 s)
	Server      time.Duration // server inactivity (30 s)
	HTTPRequest time.Duration // complete request head (15 s)
	Tunnel      time.Duration // WebSocket/upgrade inactivity (3600 s)
	Queue       time.Duration // waiting for a server slot (30 s)
	// KeepAlive is how long an idle client connection is kept. Edge-LB
	// renders 1 s; edgeproxy defaults to 65 s, above the 60 s idle timeout of
	// AWS ALB and CLB, so the balancer, not edgeproxy, ends idle connections.
	KeepAlive time.Duration
	// BackendIdle is how long an idle backend connection stays pooled. It
	// must stay below the backends' own keep-alive timeout (nginx: 75 s).
	BackendIdle time.Duration
}

// DefaultTimeouts are Edge-LB's defaults, with the keep-alive change above.
var DefaultTimeouts = Timeouts{
	Connect:     3 * time.Second,
	Client:      30 * time.Second,
	Server:      30 * time.Second,
	HTTPRequest: 15 * time.Second,
	Tunnel:      3600 * time.Second,
	Queue:       30 * time.Second,
	KeepAlive:   65 * time.Second,
	BackendIdle: 10 * time.Second,
}

func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&t.Connect, d.Connect)
	set(&t.Client, d.Client)
	set(&t.Server, d.Server)
	set(&t.HTTPRequest, d.HTTPRequest)
	set(&t.Tunnel, d.Tunnel)
	set(&t.Queue, d.Queue)
	set(&t.KeepAlive, d.KeepAlive)
	set(&t.BackendIdle, d.BackendIdle)
	return t
}
