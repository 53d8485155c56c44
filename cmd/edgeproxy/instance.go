package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeproxy/edgeproxy/config"
	"github.com/edgeproxy/edgeproxy/discovery"
	"github.com/edgeproxy/edgeproxy/elb"
	"github.com/edgeproxy/edgeproxy/healthcheck"
	"github.com/edgeproxy/edgeproxy/proxy"
	"github.com/edgeproxy/edgeproxy/proxy/accesslog"
)

// instance is one running pool instance: its backends, frontends, the
// sources that keep the backends' server sets current, and the stats
// listener.
type instance struct {
	pool      *config.Pool
	flags     *runFlags
	log       *slog.Logger
	backends  map[string]*proxy.Backend
	order     []*proxy.Backend
	frontends []*listeningFrontend
	sources   []func(ctx context.Context)
	watcher   *discovery.Watcher
	checker   *healthcheck.Checker
	registrar *elb.Registrar
	accessLog *accesslog.Logger
	trusted   []netip.Prefix // --trust-forwarded-for
	logFile   *os.File       // the access log's file, when it is one
	// initial counts the services that have not delivered their first
	// server list; frontends start serving once it reaches zero (or after
	// --startup-timeout), so the first clients never meet an empty backend.
	initial  sync.WaitGroup
	draining atomic.Bool
	stats    *statsListener
	serving  func() // called once every frontend serves; may be nil
}

type listeningFrontend struct {
	fe   *proxy.Frontend
	ln   net.Listener
	port int
	done chan error
}

// newInstance builds everything from the pool and binds every listener, so
// that a port conflict is reported before anything starts.
func newInstance(p *config.Pool, f *runFlags, log *slog.Logger) (*instance, error) {
	in := &instance{pool: p, flags: f, log: log, backends: map[string]*proxy.Backend{}}
	if err := in.openAccessLog(); err != nil {
		return nil, err
	}
	for _, c := range f.trustForwardedFor {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			if a, aerr := netip.ParseAddr(c); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				return nil, fmt.Errorf("--trust-forwarded-for %q: not an address or CIDR prefix", c)
			}
		}
		in.trusted = append(in.trusted, p.Masked())
	}
	hlog := log.With("component", "healthcheck")
	in.checker = healthcheck.NewChecker(healthcheck.Options{
		Logf: logfFor(hlog),
		OnChange: func(t *healthcheck.Target, from, to healthcheck.State) {
			st := t.Snapshot()
			hlog.Info("server state changed", "server", t.Addr(), "from", from.String(), "to", to.String(),
				"check", st.LastResult.String(), "took", st.LastDuration.String())
		},
	})
	for i := range p.Haproxy.Backends {
		if err := in.addBackend(&p.Haproxy.Backends[i]); err != nil {
			return nil, err
		}
	}
	for i := range p.Haproxy.Frontends {
		if err := in.addFrontend(&p.Haproxy.Frontends[i]); err != nil {
			in.closeListeners()
			return nil, err
		}
	}
	r, err := in.newRegistrar(context.Background())
	if err != nil {
		in.closeListeners()
		return nil, err
	}
	in.registrar = r
	st, err := newStatsListener(in)
	if err != nil {
		in.closeListeners()
		return nil, err
	}
	in.stats = st
	return in, nil
}

func (in *instance) closeListeners() {
	for _, lf := range in.frontends {
		lf.ln.Close()
	}
}

func pick(d, fallback time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return fallback
}

func (in *instance) addBackend(b *config.Backend) error {
	o := b.Options()
	switch b.Protocol {
	case config.HTTP:
	default:
		return fmt.Errorf("backend %q: protocol %s is not supported yet (HTTP only)", b.Name, b.Protocol)
	}
	t := in.flags.timeouts
	t.Connect = pick(o.Timeouts.Connect, t.Connect)
	t.Server = pick(o.Timeouts.Server, t.Server)
	t.Tunnel = pick(o.Timeouts.Tunnel, t.Tunnel)
	t.Queue = pick(o.Timeouts.Queue, t.Queue)
	retries := 3
	if o.Retries >= 0 {
		retries = o.Retries
	}
	redispatch := true
	if o.Redispatch != nil {
		redispatch = *o.Redispatch
	}
	balance := proxy.Balance(o.Balance)
	if balance == "" {
		balance = proxy.RoundRobin
	}
	rq := b.RewriteHTTP.Request
	rw := proxy.Rewrite{
		ForwardFor:     boolOr(rq.Forwardfor, true),
		ForwardedPort:  boolOr(rq.XForwardedPort, true),
		ForwardedProto: boolOr(rq.XForwardedProtoHTTPSIfTLS, true),
	}
	if boolOr(rq.SetHostHeader, true) {
		rw.Host = b.RewriteHTTP.Host
	}
	be := proxy.NewBackend(b.Name, proxy.BackendOptions{
		Balance: balance, Retries: retries, Redispatch: redispatch, Timeouts: t, Rewrite: rw,
		NewHealth:     in.newHealth,
		ServerRemoved: in.serverRemoved,
	})
	in.backends[b.Name] = be
	in.order = append(in.order, be)

	agg := &serverAggregate{be: be, parts: make([][]proxy.ServerSpec, len(b.Services))}
	for i := range b.Services {
		svc := &b.Services[i]
		opts := svc.Server(b)
		check := checkConfig(opts)
		idx := i
		var first sync.Once
		in.initial.Add(1)
		update := func(specs []proxy.ServerSpec) {
			for i := range specs {
				specs[i].Meta = check
			}
			agg.set(idx, specs)
			first.Do(in.initial.Done)
		}
		switch {
		case svc.Endpoint.Type == config.Address:
			host, port := svc.Endpoint.Address, int(*svc.Endpoint.Port)
			in.sources = append(in.sources, func(ctx context.Context) {
				watchAddress(ctx, host, port, opts.Weight, update, in.log.With("backend", b.Name))
			})
		case svc.Marathon.ServiceID != "" || svc.Marathon.ServiceIDPattern != "":
			w, err := in.marathon()
			if err != nil {
				return fmt.Errorf("backend %q service %d: %w", b.Name, i, err)
			}
			sel := discovery.Selector{
				ServiceID:        svc.Marathon.ServiceID,
				ServiceIDPattern: svc.Marathon.ServiceIDRegexp(),
				PortName:         svc.Endpoint.PortName,
				AllPorts:         boolOr(svc.Endpoint.AllPorts, false),
				Type:             string(svc.Endpoint.Type),
			}
			if svc.Endpoint.Port != nil && *svc.Endpoint.Port > 0 {
				sel.Port = int(*svc.Endpoint.Port)
			}
			kind := "agentip"
			if svc.Endpoint.Type == config.ContainerIP {
				kind = "containerip"
			}
			w.Watch(sel, func(eps []discovery.Endpoint) {
				specs := make([]proxy.ServerSpec, 0, len(eps))
				for _, e := range eps {
					if !e.Healthy {
						continue
					}
					specs = append(specs, proxy.ServerSpec{
						Name:     proxy.ServerName(kind, e.Address, e.Port),
						Addr:     net.JoinHostPort(e.Address, strconv.Itoa(e.Port)),
						Weight:   opts.Weight,
						Draining: e.Draining,
					})
				}
				update(specs)
			})
		default:
			return fmt.Errorf("backend %q service %d: only Marathon and ADDRESS services are supported yet", b.Name, i)
		}
	}
	return nil
}

// checkConfig turns a service's server options into its health check.
func checkConfig(o config.ServerOptions) healthcheck.Config {
	c := o.Check
	hc := healthcheck.Config{
		Enabled: c.Enabled, Inter: c.Inter, FastInter: c.FastInter, DownInter: c.DownInter,
		Timeout: c.Timeout, Rise: c.Rise, Fall: c.Fall, Port: c.Port, SlowStart: o.SlowStart,
	}
	if c.HTTP != nil {
		hc.HTTP = &healthcheck.HTTPCheck{Method: c.HTTP.Method, Path: c.HTTP.Path, Host: c.HTTP.Host, ExpectStatus: c.HTTP.ExpectStatus}
	}
	return hc
}

// newHealth starts the health checks of a server that joined a backend.
func (in *instance) newHealth(s *proxy.Server, spec proxy.ServerSpec) proxy.Health {
	cfg, _ := spec.Meta.(healthcheck.Config)
	t, err := in.checker.Add(s.Addr, cfg)
	if err != nil {
		in.log.Error("cannot health-check server; it takes traffic unchecked", "server", s.Addr, "error", err.Error())
		return nil
	}
	return t
}

// serverRemoved stops the health checks of a server that left its backend.
func (in *instance) serverRemoved(s *proxy.Server) {
	if t, ok := s.Health().(*healthcheck.Target); ok {
		in.checker.Remove(t)
	}
}

// marathon returns the shared Marathon watcher, creating it on first use.
func (in *instance) marathon() (*discovery.Watcher, error) {
	if in.watcher != nil {
		return in.watcher, nil
	}
	f := in.flags
	if f.marathon == "" {
		return nil, errors.New("it selects Marathon apps: pass --marathon URL (or EDGEPROXY_MARATHON)")
	}
	opts := discovery.ClientOptions{
		URLs: []string{f.marathon}, User: f.marathonUser, Password: f.marathonPassword, CAFile: f.marathonCA,
		Logf: logfFor(in.log.With("component", "marathon")),
	}
	if f.dcosUID != "" {
		key, err := os.ReadFile(f.dcosKey)
		if err != nil {
			return nil, fmt.Errorf("read DC/OS private key: %w", err)
		}
		opts.ServiceAccount = &discovery.ServiceAccount{UID: f.dcosUID, PrivateKeyPEM: key, LoginEndpoint: f.dcosLoginURL}
	}
	c, err := discovery.NewClient(opts)
	if err != nil {
		return nil, fmt.Errorf("marathon: %w", err)
	}
	in.watcher = discovery.NewWatcher(c, discovery.WatcherOptions{Logf: logfFor(in.log.With("component", "marathon"))})
	return in.watcher, nil
}

func logfFor(l *slog.Logger) func(string, ...any) {
	return func(format string, args ...any) { l.Info(fmt.Sprintf(format, args...)) }
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// serverAggregate joins the server lists of a backend's services.
type serverAggregate struct {
	mu    sync.Mutex
	be    *proxy.Backend
	parts [][]proxy.ServerSpec
}

func (a *serverAggregate) set(i int, specs []proxy.ServerSpec) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.parts[i] = specs
	var all []proxy.ServerSpec
	for _, p := range a.parts {
		all = append(all, p...)
	}
	a.be.SetServers(all)
}

func (in *instance) addFrontend(fc *config.Frontend) error {
	if fc.Protocol != config.HTTP {
		return fmt.Errorf("frontend %q: protocol %s is not supported yet (HTTP only)", fc.Name, fc.Protocol)
	}
	o := fc.Options()
	t := in.flags.timeouts
	t.Client = pick(o.Timeouts.Client, t.Client)
	t.HTTPRequest = pick(o.Timeouts.HTTPRequest, t.HTTPRequest)
	t.KeepAlive = pick(o.Timeouts.HTTPKeepAlive, t.KeepAlive)
	batch, err := batchWrites(in.flags.batchWrites)
	if err != nil {
		return err
	}
	cfg := proxy.FrontendConfig{
		Name:               fc.Name,
		Timeouts:           t,
		MaxConns:           o.MaxConn,
		MaxRequestsPerConn: in.flags.maxRequestsPerConn,
		MaxHeaderSize:      in.flags.maxHeaderSize,
		ParkIdleAfter:      parkIdleAfter(in.flags.parkIdleAfter),
		BatchWrites:        batch,
		AccessLog:          in.accessLog,
		TrustForwardedFor:  in.trusted,
		AcceptProxy:        o.AcceptProxy,
		Logf:               logfFor(in.log.With("frontend", fc.Name)),
	}
	if d := fc.LinkBackend.DefaultBackend; d != "" {
		cfg.Default = in.backends[d]
	}
	for _, m := range fc.LinkBackend.Map {
		cfg.Routes = append(cfg.Routes, proxy.Route{
			Backend: in.backends[m.Backend], HostEq: m.HostEq, HostReg: m.HostReg,
			PathBeg: m.PathBeg, PathEnd: m.PathEnd, PathReg: m.PathReg,
		})
	}
	port := int(*fc.BindPort)
	addr := net.JoinHostPort(fc.BindAddress, strconv.Itoa(port))
	ln, err := proxy.Listen(addr)
	if err != nil {
		return fmt.Errorf("frontend %q: %w", fc.Name, err)
	}
	cfg.Port = ln.Addr().(*net.TCPAddr).Port
	fe, err := proxy.NewFrontend(cfg)
	if err != nil {
		ln.Close()
		return fmt.Errorf("frontend %q: %w", fc.Name, err)
	}
	in.frontends = append(in.frontends, &listeningFrontend{fe: fe, ln: ln, port: cfg.Port, done: make(chan error, 1)})
	return nil
}

// run serves until ctx ends, then drains within the grace period.
func (in *instance) run(ctx context.Context) error {
	srcCtx, stopSources := context.WithCancel(context.Background())
	defer stopSources()
	for _, s := range in.sources {
		go s(srcCtx)
	}
	if in.watcher != nil {
		go in.watcher.Run(srcCtx)
	}
	var regDone chan error
	if in.registrar != nil {
		regDone = make(chan error, 1)
		go func() { regDone <- in.registrar.Run(srcCtx) }()
	}
	go in.stats.serve()
	initial := make(chan struct{})
	go func() { in.initial.Wait(); close(initial) }()
	select {
	case <-initial:
	case <-time.After(in.flags.startupTimeout):
		in.log.Warn("not every backend has its servers yet; serving anyway", "waited", in.flags.startupTimeout.String())
	case <-ctx.Done():
	}
	for _, lf := range in.frontends {
		go func() { lf.done <- lf.fe.Serve(lf.ln) }()
		in.log.Info("frontend listening", "frontend", lf.fe.Name, "address", lf.ln.Addr().String())
	}
	if in.serving != nil {
		in.serving()
	}
	if in.registrar != nil {
		go in.registerWhenReady(srcCtx)
	}
	if every := in.flags.trimMemoryAfter; every > 0 {
		go newMemoryTrimmer(every, in.activity, in.inFlight, trimMemory(in.log)).run(srcCtx)
	}
	select {
	case <-ctx.Done():
	case err := <-in.firstFrontendError():
		return err
	}
	in.drain()
	stopSources()
	if regDone != nil {
		<-regDone
	}
	in.log.Info("stopped")
	return nil
}

// activity is the requests answered and the connections accepted and
// closed so far, on every frontend.
func (in *instance) activity() uint64 {
	var n uint64
	for _, lf := range in.frontends {
		st := &lf.fe.Stats
		accepted := st.Accepted.Load()
		closed := accepted - uint64(max(st.Conns.Load(), 0))
		n += st.Requests.Load() + accepted + closed
	}
	return n
}

// inFlight is the number of requests at the servers now.
func (in *instance) inFlight() int64 {
	var n int64
	for _, b := range in.backends {
		for _, srv := range b.Servers() {
			n += srv.Stats.Active.Load()
		}
	}
	return n
}

// registerWhenReady tells the registrar to register once the instance is
// ready: frontends serve and every Marathon selector synced.
func (in *instance) registerWhenReady(ctx context.Context) {
	for !in.ready() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	in.registrar.SetReady()
}

// drain is the shutdown order, all within --grace-period:
//  1. fail /_haproxy_health_check (not behind an NLB: there a failing
//     target health check resets the flows it still carries);
//  2. deregister from every load balancer and keep serving until each
//     reports the target drained or its deregistration delay passed;
//  3. close connections lazily: every response says "Connection: close"
//     for --lazy-close;
//  4. stop accepting, let requests in flight finish, close idle
//     connections with a half-close and lingering read.
func (in *instance) drain() {
	budget, cancel := context.WithTimeout(context.Background(), in.flags.gracePeriod)
	defer cancel()
	r := in.registrar
	if r == nil || r.Kind().MayFailHealthCheck() {
		in.draining.Store(true)
	}
	in.log.Info("draining", "grace_period", in.flags.gracePeriod.String())
	if r != nil {
		if err := r.Deregister(budget); err != nil {
			in.log.Error("deregistration failed; draining anyway", "error", err.Error())
		}
		if err := r.WaitDrained(budget); err != nil {
			in.log.Warn("load balancer drain not confirmed", "error", err.Error())
		}
		in.draining.Store(true)
	}
	for _, lf := range in.frontends {
		lf.fe.CloseLazily()
	}
	if in.flags.lazyClose > 0 && r != nil {
		select {
		case <-budget.Done():
		case <-time.After(in.flags.lazyClose):
		}
	}
	var wg sync.WaitGroup
	for _, lf := range in.frontends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := lf.fe.Shutdown(budget); err != nil {
				in.log.Warn("drain cut short", "frontend", lf.fe.Name, "error", err.Error())
			}
		}()
	}
	wg.Wait()
	for _, be := range in.order {
		be.Close()
	}
	in.checker.Close()
	in.stats.shutdown(budget)
	in.closeAccessLog()
}

// openAccessLog opens --access-log: stdout, stderr, off or a file path
// (appended to).
func (in *instance) openAccessLog() error {
	format, err := accesslog.ParseFormat(in.flags.accessLogFormat)
	if err != nil {
		return fmt.Errorf("--access-log-format: %w", err)
	}
	var w io.Writer
	switch in.flags.accessLog {
	case "off", "":
		return nil
	case "stdout":
		w = os.Stdout
	case "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(in.flags.accessLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return fmt.Errorf("--access-log: %w", err)
		}
		in.logFile, w = f, f
	}
	in.accessLog = accesslog.New(w, accesslog.Options{Format: format, Logf: logfFor(in.log.With("component", "accesslog"))})
	return nil
}

func (in *instance) closeAccessLog() {
	if in.accessLog != nil {
		in.accessLog.Close()
	}
	if in.logFile != nil {
		in.logFile.Close()
	}
}

func (in *instance) firstFrontendError() <-chan error {
	ch := make(chan error, 1)
	for _, lf := range in.frontends {
		go func() {
			if err := <-lf.done; err != nil {
				ch <- fmt.Errorf("frontend %q: %w", lf.fe.Name, err)
			}
		}()
	}
	return ch
}

// ready reports whether the instance should take traffic: not draining,
// and every Marathon selector synced once.
func (in *instance) ready() bool {
	if in.draining.Load() {
		return false
	}
	if in.watcher != nil {
		select {
		case <-in.watcher.Synced():
		default:
			return false
		}
	}
	return true
}

// watchAddress keeps the servers of an ADDRESS endpoint current: an IP is
// one server; a DNS name is resolved now and every 10 s (HAProxy's
// resolvers hold a valid answer 10 s), one server per address, and a failed
// lookup keeps the last good answer.
func watchAddress(ctx context.Context, host string, port, weight int, update func([]proxy.ServerSpec), log *slog.Logger) {
	if ip := net.ParseIP(host); ip != nil {
		update([]proxy.ServerSpec{{Name: proxy.ServerName("address", host, port), Addr: net.JoinHostPort(host, strconv.Itoa(port)), Weight: weight}})
		return
	}
	var last string
	failing := false
	for {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err := net.DefaultResolver.LookupHost(lctx, host)
		cancel()
		switch {
		case err != nil:
			if !failing {
				log.Warn("cannot resolve address; keeping the last answer", "address", host, "error", err.Error())
				failing = true
			}
		default:
			if failing {
				log.Info("address resolves again", "address", host)
				failing = false
			}
			sort.Strings(addrs)
			key := fmt.Sprint(addrs)
			if key != last {
				last = key
				specs := make([]proxy.ServerSpec, len(addrs))
				for i, a := range addrs {
					name := proxy.ServerName("address", host, port)
					if len(addrs) > 1 {
						name += "_" + a
					}
					specs[i] = proxy.ServerSpec{Name: name, Addr: net.JoinHostPort(a, strconv.Itoa(port)), Weight: weight}
				}
				update(specs)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// batchWrites maps --batch-writes onto proxy.FrontendConfig.
func batchWrites(v string) (bool, error) {
	switch v {
	case "auto":
		return proxy.BatchWritesByDefault(), nil
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("--batch-writes: %q is not auto, on or off", v)
}

// parkIdleAfter maps --park-idle-after onto proxy.FrontendConfig, where 0
// means the default: 0 on the command line turns parking off.
func parkIdleAfter(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}
