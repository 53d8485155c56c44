package stats

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a stats Server. Every field may be left zero.
type Options struct {
	// Frontends and Backends return the current proxies. They are called
	// on every stats request and scrape and once per second by the rate
	// sampler, so they must be cheap and safe for concurrent use. Nil
	// means none.
	Frontends func() []*proxy.Frontend
	Backends  func() []*proxy.Backend
	// FrontendBackends returns the backends a frontend routes to (its
	// linkBackend rules and default backend): their request, response and
	// byte counters are reported for the frontend too. Nil attributes all
	// backends to the frontend when there is only one and leaves those
	// frontend columns empty otherwise.
	FrontendBackends func(*proxy.Frontend) []*proxy.Backend
	// ServerHealth, when set, reports a server's health checking (for
	// example from proxy.Server.Health()): its state and the check columns
	// of the report. ok false, or nil, leaves them empty and derives the
	// state from Available() and the weight.
	ServerHealth func(*proxy.Server) (h ServerHealth, ok bool)
	// PoolName titles the HTML page.
	PoolName string
	// Config returns the effective configuration as JSON, which
	// /_haproxy_getconfig serves. Nil answers 404.
	Config func() ([]byte, error)
	// Ready reports whether the instance should take traffic: false before
	// the first discovery sync and while draining. /_haproxy_health_check
	// and /readyz answer 503 while it is false. Nil means always ready.
	Ready func() bool
	// Extra are more collectors for /metrics, such as the edgeproxy_*
	// metrics of other packages. One that cannot be registered is logged
	// and left out.
	Extra []prometheus.Collector
	// Version labels edgeproxy_build_info and the page; empty means the
	// main module's version from the build information.
	Version string
	// Logf logs errors of the listener; nil discards them.
	Logf func(format string, args ...any)
}

// Server is the stats listener: HAProxy's stats page and CSV export,
// Prometheus metrics, and the health and admin endpoints of an Edge-LB
// pool.
type Server struct {
	opts     Options
	logf     func(string, ...any)
	version  string
	pid      int
	started  time.Time
	self     selfStats
	rates    rates
	registry *prometheus.Registry
	handler  http.Handler
	http     *http.Server

	mu       sync.Mutex // guards sampling and stopped
	sampling bool
	stopped  bool
	stop     chan struct{} // closed by Shutdown
	sampler  sync.WaitGroup
}

// New builds a stats Server; Serve starts it.
func New(opts Options) *Server {
	s := &Server{
		opts:    opts,
		logf:    opts.Logf,
		pid:     os.Getpid(),
		started: time.Now(),
		stop:    make(chan struct{}),
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	var info prometheus.Collector
	info, s.version = buildInfo(opts.Version)
	s.registry = prometheus.NewRegistry()
	s.registry.MustRegister(newCollector(s), info)
	for _, c := range opts.Extra {
		if err := s.registry.Register(c); err != nil {
			s.logf("stats: extra collector left out of /metrics: %v", err)
		}
	}
	s.handler = s.self.countRequests(s.routes())
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ConnState:         s.self.connState,
		ErrorLog:          newErrorLog(s.logf),
	}
	return s
}

// Handler serves every endpoint of the listener:
//
//	/haproxy?stats                 HTML page (";norefresh", ";up", ";no-maint")
//	/haproxy?stats;csv             HAProxy 2.6 CSV export
//	/metrics                       Prometheus exposition
//	/_haproxy_health_check         200 while ready, else 503 (HAProxy's monitor-uri)
//	/readyz                        the same
//	/healthz                       200 while the process serves
//	/_haproxy_getconfig            the effective configuration (JSON)
//	/_haproxy_getpids              the process id
//
// Rates (rate, rate_max, smax, lastsess...) need the sampler that Serve
// starts; without it those columns stay empty.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections on ln until Shutdown, and samples the counters
// once per second for rates. It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.startSampler()
	err := s.http.Serve(countingListener{Listener: ln, st: &s.self})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets requests in flight finish until ctx ends,
// and stops the sampler.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.stopped {
		s.stopped = true
		close(s.stop)
	}
	s.mu.Unlock()
	err := s.http.Shutdown(ctx)
	s.sampler.Wait()
	return err
}

// startSampler starts the rate sampler once, unless Shutdown came first.
func (s *Server) startSampler() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sampling || s.stopped {
		return
	}
	s.sampling = true
	s.sampler.Add(1)
	go func() {
		defer s.sampler.Done()
		t := time.NewTicker(sampleInterval)
		defer t.Stop()
		s.sample(time.Now())
		for {
			select {
			case <-s.stop:
				return
			case now := <-t.C:
				s.sample(now)
			}
		}
	}()
}

// sample reads the counters once for the rate estimates.
func (s *Server) sample(now time.Time) { s.rates.observe(s.build(now), now) }

func (s *Server) ready() bool { return s.opts.Ready == nil || s.opts.Ready() }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /haproxy", s.serveStats)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog:      newErrorLog(s.logf),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /_haproxy_health_check", s.serveReady)
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, "OK\n")
	})
	mux.HandleFunc("GET /_haproxy_getpids", func(w http.ResponseWriter, r *http.Request) {
		writeText(w, http.StatusOK, strconv.Itoa(s.pid)+"\n")
	})
	mux.HandleFunc("GET /_haproxy_getconfig", s.serveConfig)
	return mux
}

// serveStats serves the stats page or, with ";csv", the CSV export. Like
// HAProxy's "stats uri /haproxy?stats", the query must start with "stats".
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	v, ok := parseView(r.URL.RawQuery)
	if !ok {
		http.NotFound(w, r)
		return
	}
	now := time.Now()
	gs := s.snapshot(now)
	h := w.Header()
	h.Set("Cache-Control", "no-cache")
	if v.csv {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	} else {
		h.Set("Content-Type", "text/html; charset=utf-8")
	}
	w.WriteHeader(http.StatusOK)
	var err error
	if v.csv {
		err = writeCSV(w, gs, v)
	} else {
		err = s.writePage(w, r.URL.Path, gs, v, now)
	}
	if err != nil {
		s.logf("stats: writing %s: %v", r.URL.RequestURI(), err)
	}
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if !s.ready() {
		writeText(w, http.StatusServiceUnavailable, "503 Service Unavailable\n")
		return
	}
	writeText(w, http.StatusOK, "OK\n")
}

func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request) {
	if s.opts.Config == nil {
		http.NotFound(w, r)
		return
	}
	b, err := s.opts.Config()
	if err != nil {
		s.logf("stats: rendering the effective config: %v", err)
		writeText(w, http.StatusInternalServerError, "500 Internal Server Error\n")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

func writeText(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
