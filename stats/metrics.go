package stats

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// Scopes of an exported metric: which row types carry it.
const (
	scopeFE = 1 << typeFrontend
	scopeBE = 1 << typeBackend
	scopeSV = 1 << typeServer
)

// promMetric maps a CSV column to a metric of HAProxy's built-in exporter
// (promex), named haproxy_<frontend|backend|server>_<suffix>, with the
// labels proxy (and server for servers), as HAProxy 2.6 exports them.
type promMetric struct {
	suffix string
	col    int
	scopes int
	vt     prometheus.ValueType
	help   string
}

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// promMetrics are the exported metrics that edgeproxy has values for; a row
// whose cell is empty is skipped (HAProxy would print NaN). The check
// status and code of servers with active checks are exported apart, as
// HAProxy exports them even when the CSV cell is empty.
var promMetrics = []promMetric{
	{"current_sessions", colScur, scopeFE | scopeBE | scopeSV, gauge, "Current number of sessions (frontend: client connections; backend and server: requests in flight)."},
	{"max_sessions", colSmax, scopeFE | scopeBE | scopeSV, gauge, "Highest number of current sessions seen by the once-a-second sampler."},
	{"sessions_total", colStot, scopeFE | scopeBE | scopeSV, counter, "Total number of sessions (frontend: accepted connections; backend and server: requests)."},
	{"bytes_in_total", colBin, scopeFE | scopeBE | scopeSV, counter, "Request bytes received from clients (edgeproxy frontends and servers: streamed request bodies only)."},
	{"bytes_out_total", colBout, scopeFE | scopeBE | scopeSV, counter, "Response bytes sent to clients (edgeproxy frontends and servers: response bodies only)."},
	{"request_errors_total", colEreq, scopeFE, counter, "Requests refused for their framing or parse errors."},
	{"connection_errors_total", colEcon, scopeBE | scopeSV, counter, "Failed connections to servers (backend: plus requests with no server available)."},
	{"response_errors_total", colEresp, scopeBE | scopeSV, counter, "Broken or missing server responses."},
	{"retry_warnings_total", colWretr, scopeBE | scopeSV, counter, "Retried attempts to serve a request."},
	{"redispatch_warnings_total", colWredis, scopeBE | scopeSV, counter, "Retries sent to another server than the failed one."},
	{"weight", colWeight, scopeBE | scopeSV, gauge, "Effective weight (backend: sum over usable servers)."},
	{"uweight", colUweight, scopeBE | scopeSV, gauge, "Configured weight (backend: sum over usable servers)."},
	{"active_servers", colAct, scopeBE, gauge, "Number of usable servers."},
	{"backup_servers", colBck, scopeBE, gauge, "Number of backup servers (edgeproxy has none)."},
	{"loadbalanced_total", colLbtot, scopeBE | scopeSV, counter, "Times a server was picked for a request attempt."},
	{"max_session_rate", colRateMax, scopeFE | scopeBE | scopeSV, gauge, "Highest number of new sessions in one second."},
	{"http_requests_rate_max", colReqRateMax, scopeFE, gauge, "Highest number of HTTP requests in one second."},
	{"http_requests_total", colReqTot, scopeFE | scopeBE, counter, "Total number of HTTP requests."},
	{"last_session_seconds", colLastsess, scopeBE | scopeSV, gauge, "Seconds since the last session (-1: never), to the sampler's second."},
	{"connections_rate_max", colConnRateMax, scopeFE, gauge, "Highest number of new connections in one second."},
	{"connections_total", colConnTot, scopeFE, counter, "Total number of accepted connections."},
	{"intercepted_requests_total", colIntercepted, scopeFE, counter, "Requests answered by the stats listener itself."},
	{"connection_attempts_total", colConnect, scopeBE | scopeSV, counter, "Connection attempts to servers."},
	{"connection_reuses_total", colReuse, scopeBE | scopeSV, counter, "Requests sent over a reused idle connection."},
	{"idle_connections_current", colSrvIcur, scopeSV, gauge, "Idle pooled connections to the server."},
	{"unsafe_idle_connections_current", colIdleConnCur, scopeSV, gauge, "Idle pooled connections that only their own client's requests may reuse (edgeproxy has none)."},
	{"safe_idle_connections_current", colSafeConnCur, scopeSV, gauge, "Idle pooled connections that any request may reuse."},
	{"used_connections_current", colUsedConnCur, scopeSV, gauge, "Connections to the server in use by a request."},
	{"check_failures_total", colChkfail, scopeSV, counter, "Failed health checks."},
	{"check_up_down_total", colChkdown, scopeSV, counter, "Transitions to DOWN."},
	{"check_last_change_seconds", colLastchg, scopeSV, gauge, "Seconds since the last state change."},
	{"downtime_seconds_total", colDowntime, scopeSV, counter, "Total time spent DOWN, in seconds."},
	{"check_duration_seconds", colCheckDuration, scopeSV, gauge, "Duration of the last health check, in seconds."},
}

// msColumns hold milliseconds, which the exporter gives in seconds.
var msColumns = map[int]bool{colCheckDuration: true}

// The label values of the per-state metrics, in promex's order.
var (
	proxyStates  = []string{"DOWN", "UP"}
	serverStates = []string{"DOWN", "UP", "MAINT", "DRAIN", "NOLB"}
	codeLabels   = [6]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}
)

var scopeNames = map[int]string{typeFrontend: "frontend", typeBackend: "backend", typeServer: "server"}

// collector exports the report as Prometheus metrics. It reads the counters
// at scrape time, like the CSV export: the data path pays nothing.
type collector struct {
	s *Server
	// descs[typ][i] is promMetrics[i] in scope typ, nil when out of scope.
	descs       [3][]*prometheus.Desc
	responses   [3]*prometheus.Desc
	status      [3]*prometheus.Desc
	aggStatus   *prometheus.Desc
	checkStatus *prometheus.Desc
	checkCode   *prometheus.Desc
	respTime    *prometheus.Desc
	parked      *prometheus.Desc
}

func labelsOf(typ int, extra ...string) []string {
	l := []string{"proxy"}
	if typ == typeServer {
		l = append(l, "server")
	}
	return append(l, extra...)
}

func newCollector(s *Server) *collector {
	c := &collector{s: s}
	for typ := typeFrontend; typ <= typeServer; typ++ {
		prefix := "haproxy_" + scopeNames[typ] + "_"
		c.descs[typ] = make([]*prometheus.Desc, len(promMetrics))
		for i, m := range promMetrics {
			if m.scopes&(1<<typ) != 0 {
				c.descs[typ][i] = prometheus.NewDesc(prefix+m.suffix, m.help, labelsOf(typ), nil)
			}
		}
		c.responses[typ] = prometheus.NewDesc(prefix+"http_responses_total",
			"Total number of HTTP responses, by status class.", labelsOf(typ, "code"), nil)
		c.status[typ] = prometheus.NewDesc(prefix+"status",
			"Current status, 1 for the state it is in and 0 for the others.", labelsOf(typ, "state"), nil)
	}
	c.parked = prometheus.NewDesc("edgeproxy_frontend_parked_connections",
		"Idle keep-alive client connections parked without a goroutine (part of current_sessions).",
		[]string{"proxy"}, nil)
	c.respTime = prometheus.NewDesc("edgeproxy_backend_response_time_seconds",
		"Time from sending a request to a server to receiving its response head (HAProxy's Tr).",
		[]string{"proxy"}, nil)
	c.aggStatus = prometheus.NewDesc("haproxy_backend_agg_server_status",
		"Number of the backend's servers in each state.", []string{"proxy", "state"}, nil)
	c.checkStatus = prometheus.NewDesc("haproxy_server_check_status",
		"Status of the last health check, 1 for the status it has and 0 for the others (all 0 before the first check).",
		labelsOf(typeServer, "state"), nil)
	c.checkCode = prometheus.NewDesc("haproxy_server_check_code",
		"HTTP status of the last health check, 0 for a check without one (TCP checks, failures before a status).",
		labelsOf(typeServer), nil)
	return c
}

// Describe sends every descriptor; the set is fixed.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for typ := range c.descs {
		for _, d := range c.descs[typ] {
			if d != nil {
				ch <- d
			}
		}
		ch <- c.responses[typ]
		ch <- c.status[typ]
	}
	ch <- c.aggStatus
	ch <- c.checkStatus
	ch <- c.checkCode
	ch <- c.respTime
	ch <- c.parked
}

// Collect reads one snapshot and sends its metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.s.snapshot(time.Now()) {
		for _, r := range g.rows() {
			c.collectRow(ch, r)
		}
		if g.Backend != nil {
			c.collectAgg(ch, g)
		}
	}
	if c.s.opts.Backends != nil {
		for _, b := range c.s.opts.Backends() {
			c.collectResponseTime(ch, b)
		}
	}
	if c.s.opts.Frontends != nil {
		for _, f := range c.s.opts.Frontends() {
			ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(f.Stats.Parked.Load()), f.Name)
		}
	}
}

// collectResponseTime sends a backend's response time histogram (time from
// sending a request to a server to its response head, HAProxy's Tr).
func (c *collector) collectResponseTime(ch chan<- prometheus.Metric, b *proxy.Backend) {
	st := &b.Stats
	buckets := make(map[float64]uint64, len(proxy.ResponseTimeBuckets))
	var count uint64
	for i, le := range proxy.ResponseTimeBuckets {
		count += st.ResponseTime[i].Load()
		buckets[le.Seconds()] = count
	}
	count += st.ResponseTime[len(proxy.ResponseTimeBuckets)].Load()
	sum := time.Duration(st.ResponseTimeSum.Load()).Seconds()
	ch <- prometheus.MustNewConstHistogram(c.respTime, count, sum, buckets, b.Name)
}

func (c *collector) collectRow(ch chan<- prometheus.Metric, r *row) {
	labels := []string{r.px}
	if r.typ == typeServer {
		labels = append(labels, r.sv)
	}
	for i, m := range promMetrics {
		d := c.descs[r.typ][i]
		if d == nil {
			continue
		}
		if v, ok := r.num(m.col); ok {
			f := float64(v)
			if msColumns[m.col] {
				f /= 1000
			}
			ch <- prometheus.MustNewConstMetric(d, m.vt, f, labels...)
		}
	}
	for i, code := range codeLabels {
		if v, ok := r.num(colHrsp1xx + i); ok {
			ch <- prometheus.MustNewConstMetric(c.responses[r.typ], counter, float64(v), append(labels, code)...)
		}
	}
	states, cur := proxyStates, promState(r)
	if r.typ == typeServer {
		states = serverStates
	}
	for _, st := range states {
		ch <- prometheus.MustNewConstMetric(c.status[r.typ], gauge, oneIf(st == cur), append(labels, st)...)
	}
	if r.checked {
		for _, st := range checkStatuses {
			ch <- prometheus.MustNewConstMetric(c.checkStatus, gauge, oneIf(st == r.checkStatus), append(labels, st)...)
		}
		code, _ := r.num(colCheckCode)
		ch <- prometheus.MustNewConstMetric(c.checkCode, gauge, float64(max(code, 0)), labels...)
	}
}

func oneIf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// promState is a row's state as the exporter labels it: the CSV status,
// with a frontend's OPEN and a server's "no check" as UP.
func promState(r *row) string {
	switch st := r.status; st {
	case "OPEN", "no check":
		return "UP"
	default:
		return st
	}
}

// collectAgg counts the backend's servers per state. Like HAProxy, a
// backend without servers has no such metric.
func (c *collector) collectAgg(ch chan<- prometheus.Metric, g *group) {
	if len(g.Servers) == 0 {
		return
	}
	n := make(map[string]int, len(serverStates))
	for _, r := range g.Servers {
		n[promState(r)]++
	}
	for _, st := range serverStates {
		ch <- prometheus.MustNewConstMetric(c.aggStatus, gauge, float64(n[st]), g.Name, st)
	}
}

// buildInfo is edgeproxy_build_info: 1, with the version labels. It also
// returns the version it settled on.
func buildInfo(version string) (prometheus.Collector, string) {
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" {
				revision = kv.Value
			}
		}
	}
	if version == "" {
		version = "unknown"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "edgeproxy_build_info",
		Help: "A metric with a constant 1 value labelled by the version, revision and Go version edgeproxy was built from.",
		ConstLabels: prometheus.Labels{
			"version":   version,
			"revision":  revision,
			"goversion": runtime.Version(),
		},
	})
	g.Set(1)
	return g, version
}
