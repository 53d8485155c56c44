package e2e

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDifferentialHAProxy runs edgeproxy and HAProxy 2.6 with equivalent
// configurations in front of the same four backends, sends both the same
// traffic, and compares what their stats listeners report: the CSV export
// column by column, and the Prometheus metrics series by series.
//
// The traffic, identical for both: 20 GETs to /, 3 to /missing (404), 2 to
// /error (500) and one with a Host that no rule routes (503 from the
// frontend); then, with s3's port closed while its health check still
// passes (it probes s1's port), one GET that the round robin hands to s3,
// so the proxy fails to connect and redispatches it; then s4 is stopped,
// both mark it DOWN, and its checks fail for another second. Every client
// request uses its own connection and every backend response closes its
// connection, so sessions, connection attempts and reuses are
// deterministic.
//
// Columns and metrics where edgeproxy is known to differ from HAProxy are
// listed in knownCSVDifferences and knownMetricDifferences with the reason;
// the test logs their values and asserts on the rest it compares: the
// header byte for byte, the columns of agreeByType, the metric families
// of agreeingMetrics.
func TestDifferentialHAProxy(t *testing.T) {
	hap := requireHAProxy(t)
	s1 := startBackend(t, "s1", true)
	s2 := startBackend(t, "s2", true)
	s3 := startBackend(t, "s3", true)
	s4 := startBackend(t, "s4", true)
	svcs := []service{
		{b: s1},
		{b: s2},
		{b: s3, miscStr: "port " + strconv.Itoa(s1.port)}, // stays UP after s3 stops
		{b: s4, miscStr: "inter 300ms rise 1 fall 1"},     // DOWN at once after s4 stops
	}
	const host = "app.test"

	ePort, eStats := freePort(t), freePort(t)
	pool, feName := poolConfig(t, ePort, eStats, host, svcs)
	startEdgeproxy(t, pool, eStats)
	hPort, hStats := freePort(t), freePort(t)
	startHAProxy(t, hap, haproxyPool{frontendName: feName, port: hPort, statsPort: hStats, hostEq: host, services: svcs})
	proxies := []*proxyUnderTest{
		{name: "edgeproxy", addr: fmt.Sprintf("127.0.0.1:%d", ePort), stats: fmt.Sprintf("127.0.0.1:%d", eStats)},
		{name: "haproxy", addr: fmt.Sprintf("127.0.0.1:%d", hPort), stats: fmt.Sprintf("127.0.0.1:%d", hStats)},
	}
	servers := []*backend{s1, s2, s3, s4}

	// Both have checked every server once before any traffic.
	for _, p := range proxies {
		eventually(t, 10*time.Second, p.name+" checks every server", func() bool {
			c := p.csv(t)
			for _, b := range servers {
				if r := c.row(t, "customer-backend", b.serverName()); r["status"] != "UP" || r["check_status"] != "L4OK" {
					return false
				}
			}
			return true
		})
	}

	// Phase 1: the scripted requests. The round robin must hand them to
	// the servers in the same order.
	for _, p := range proxies {
		for range 20 {
			p.expect(t, host, "/", http.StatusOK)
		}
		for range 3 {
			p.expect(t, host, "/missing", http.StatusNotFound)
		}
		for range 2 {
			p.expect(t, host, "/error", http.StatusInternalServerError)
		}
		p.expect(t, "unrouted.test", "/", http.StatusServiceUnavailable)
	}
	if e, h := proxies[0].servedBy, proxies[1].servedBy; !slices.Equal(e, h) {
		t.Fatalf("round robin order differs:\nedgeproxy %v\nhaproxy   %v", e, h)
	}
	order := proxies[0].servedBy
	for i := range order {
		if order[i] != servers[i%len(servers)].name {
			t.Fatalf("round robin is not s1, s2, s3, s4 in turn: %v", order)
		}
	}

	// Phase 2: GETs to / until s3 is next, then s3 refuses connections
	// and one more request goes its way.
	filler := (2 - len(order)%4 + 4) % 4 // s3 is servers[2]
	for _, p := range proxies {
		for range filler {
			p.expect(t, host, "/", http.StatusOK)
		}
	}
	s3.stop()
	for _, p := range proxies {
		p.expect(t, host, "/", http.StatusOK)
	}
	if e, h := proxies[0].last(), proxies[1].last(); e != h || e != "s4" {
		t.Errorf("the request s3 refused was redispatched to %q by edgeproxy and %q by haproxy; want s4 for both", e, h)
	}

	// Phase 3: s4 goes away and both mark it DOWN; its checks go on
	// failing for a second (chkfail).
	s4.stop()
	for _, p := range proxies {
		eventually(t, 10*time.Second, p.name+" marks s4 DOWN", func() bool {
			return p.csv(t).row(t, "customer-backend", s4.serverName())["status"] == "DOWN"
		})
	}
	time.Sleep(time.Second)

	e, h := proxies[0].csv(t), proxies[1].csvBetweenChecks(t)
	t.Run("csv", func(t *testing.T) {
		compareCSVHeader(t, e, h)
		if !slices.Equal(e.keys(), h.keys()) {
			t.Errorf("CSV lines differ:\nedgeproxy %v\nhaproxy   %v", e.keys(), h.keys())
		}
		rows := []struct{ px, sv string }{{"stats", "FRONTEND"}, {"stats", "BACKEND"}, {feName, "FRONTEND"}}
		for _, b := range servers {
			rows = append(rows, struct{ px, sv string }{"customer-backend", b.serverName()})
		}
		rows = append(rows, struct{ px, sv string }{"customer-backend", "BACKEND"})
		shown := map[string]bool{}
		for _, r := range rows {
			for _, k := range compareCSVRow(t, r.px, r.sv, e.row(t, r.px, r.sv), h.row(t, r.px, r.sv)) {
				shown[k] = true
			}
		}
		for kind, cols := range knownCSVDifferences {
			for c := range cols {
				if !shown[kind+"/"+c] {
					t.Logf("known difference %s/%s shows nowhere now: compare it (%s)", kind, c, cols[c])
				}
			}
		}
		// Beyond agreeing, the counts are those of the traffic sent.
		routed := 25 + filler + 1
		for i, c := range []*statsCSV{e, h} {
			name := proxies[i].name
			wantColumns(t, name, c, feName, "FRONTEND", map[string]int{
				"stot": routed + 1, "req_tot": routed + 1, "hrsp_2xx": routed - 5, "hrsp_4xx": 3, "hrsp_5xx": 3,
				"h1_total_connections": routed + 1, "h1_total_streams": routed + 1, "h1_open_connections": 0,
			})
			wantColumns(t, name, c, "customer-backend", "BACKEND", map[string]int{
				"stot": routed, "req_tot": routed, "hrsp_2xx": routed - 5, "hrsp_4xx": 3, "hrsp_5xx": 2,
				"lbtot": routed + 1, "connect": routed + 1, "reuse": 0, "wredis": 1, "act": 3, "weight": 3,
				"h1_total_connections": routed + 1, "h1_total_streams": routed + 1, "h1_open_connections": 0,
			})
			// s4 failed one check while UP (fall 1), then only while
			// DOWN, which chkfail leaves out.
			wantColumns(t, name, c, "customer-backend", s4.serverName(), map[string]int{"chkfail": 1, "chkdown": 1})
			for sv, want := range map[string][2]string{
				s1.serverName(): {"Layer4 check passed", ""},
				s4.serverName(): {"Layer4 connection problem", "Connection refused"},
			} {
				r := c.row(t, "customer-backend", sv)
				if r["check_desc"] != want[0] || r["last_chk"] != want[1] {
					t.Errorf("%s: %s check_desc %q last_chk %q, want %q %q", name, sv, r["check_desc"], r["last_chk"], want[0], want[1])
				}
			}
		}
		compareStatsListener(t, e, h)
	})

	t.Run("metrics", func(t *testing.T) {
		em := parseProm(t, fetchOK(t, "http://"+proxies[0].stats+"/metrics"))
		hm := parseProm(t, fetchOK(t, "http://"+proxies[1].stats+"/metrics"))
		compareMetrics(t, em, hm)
		want := map[series]float64{
			{"haproxy_backend_http_responses_total", labels("proxy", "customer-backend", "code", "4xx")}:               3,
			{"haproxy_server_status", labels("proxy", "customer-backend", "server", s4.serverName(), "state", "DOWN")}: 1,
			{"haproxy_server_status", labels("proxy", "customer-backend", "server", s3.serverName(), "state", "UP")}:   1,
			{"haproxy_frontend_http_responses_total", labels("proxy", feName, "code", "5xx")}:                          3,
		}
		for s, v := range want {
			for name, m := range map[string]*promScrape{"edgeproxy": em, "haproxy": hm} {
				if got, ok := m.values[s]; !ok || got != v {
					t.Errorf("%s: %s = %v (present %v), want %v", name, s, got, ok, v)
				}
			}
		}
	})
}

// proxyUnderTest is one of the two proxies, with the servers that answered
// its requests so far.
type proxyUnderTest struct {
	name     string
	addr     string // frontend
	stats    string // stats listener
	servedBy []string
}

var noKeepAlive = &http.Client{
	Transport: &http.Transport{DisableKeepAlives: true},
	Timeout:   20 * time.Second,
}

// expect sends GET path with the Host header on a new connection and
// checks the status.
func (p *proxyUnderTest) expect(t *testing.T, host, path string, status int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+p.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatalf("%s: GET %s (Host %s): %v", p.name, path, host, err)
	}
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("%s: GET %s (Host %s): %d, want %d", p.name, path, host, resp.StatusCode, status)
	}
	if by := resp.Header.Get("X-Served-By"); by != "" {
		p.servedBy = append(p.servedBy, by)
	}
}

func (p *proxyUnderTest) last() string {
	if len(p.servedBy) == 0 {
		return ""
	}
	return p.servedBy[len(p.servedBy)-1]
}

func (p *proxyUnderTest) csv(t testing.TB) *statsCSV {
	return parseStatsCSV(t, fetchOK(t, "http://"+p.stats+"/haproxy?stats;csv"))
}

// csvBetweenChecks is csv taken while no health check runs: HAProxy
// reports a check under way with its last status prefixed by "* " (and
// its exporter then shows no check code), edgeproxy its last result.
func (p *proxyUnderTest) csvBetweenChecks(t testing.TB) *statsCSV {
	var c *statsCSV
	for range 50 {
		if c = p.csv(t); !c.checkRunning() {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// compareCSVHeader asserts that edgeproxy's header is HAProxy's, byte
// for byte: the 128 columns of Debian's 2.6.12, the h1 module's last.
func compareCSVHeader(t *testing.T, e, h *statsCSV) {
	t.Helper()
	if e.header != h.header {
		t.Errorf("CSV headers differ:\nedgeproxy %s\nhaproxy   %s", e.header, h.header)
	}
	if n := len(h.names); n != 128 {
		t.Errorf("haproxy's header has %d columns, want 128 (2.6 with the ssl, h2 and h1 modules)", n)
	}
}

// Columns compared for every row type; each must agree.
var (
	commonAgree = []string{"pxname", "svname", "type", "status", "pid", "iid", "sid", "mode",
		"eint", "ssl_sess", "ssl_reused_sess", "ssl_failed_handshake"}
	hrspColumns = []string{"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"}
	// h2Columns and h1Columns are the counters of the h2 and h1
	// multiplexer modules; servers leave them empty. The h1 byte counts
	// are left out (see knownCSVDifferences).
	h2Columns = []string{
		"h2_headers_rcvd", "h2_data_rcvd", "h2_settings_rcvd", "h2_rst_stream_rcvd", "h2_goaway_rcvd",
		"h2_detected_conn_protocol_errors", "h2_detected_strm_protocol_errors", "h2_rst_stream_resp",
		"h2_goaway_resp", "h2_open_connections", "h2_backend_open_streams", "h2_total_connections",
		"h2_backend_total_streams",
	}
	h1Columns = []string{
		"h1_open_connections", "h1_open_streams", "h1_total_connections", "h1_total_streams",
		"h1_spliced_bytes_in", "h1_spliced_bytes_out",
	}
	agreeByType = map[string][]string{
		"0": concat(commonAgree, hrspColumns, h2Columns, h1Columns, []string{
			"scur", "stot", "conn_tot", "req_tot", "ereq", "dreq", "dresp", "dcon", "dses", "wrew",
			"intercepted", "comp_in", "comp_out", "comp_byp", "comp_rsp", "cache_lookups", "cache_hits",
		}),
		"1": concat(commonAgree, hrspColumns, h2Columns, h1Columns, []string{
			"qcur", "qmax", "scur", "stot", "req_tot", "eresp", "wretr", "wredis", "weight", "uweight", "act", "bck",
			"lbtot", "connect", "reuse", "dreq", "dresp", "wrew", "comp_in", "comp_out", "comp_byp",
			"comp_rsp", "cache_lookups", "cache_hits", "agg_server_status",
		}),
		"2": concat(commonAgree, hrspColumns, h2Columns, h1Columns, []string{
			"qcur", "qmax", "scur", "req_tot", "eresp", "wretr", "wredis", "weight", "uweight", "act", "bck", "lbtot",
			"connect", "reuse", "dresp", "wrew", "srv_icur", "idle_conn_cur", "safe_conn_cur",
			"used_conn_cur", "check_status", "check_code", "check_rise", "check_fall", "check_health", "chkdown",
			"chkfail", "check_desc", "last_chk", "h1_bytes_in", "h1_bytes_out",
		}),
		// The stats listener's own lines. The two answered different
		// numbers of scrapes of different sizes, so its frontend's
		// counts are not compared; its BACKEND counts nothing (every
		// request is intercepted at the frontend) but the frontend's
		// bytes, which compareStatsListener checks.
		"stats FRONTEND": concat(commonAgree, h2Columns, []string{
			"h1_spliced_bytes_in", "h1_spliced_bytes_out", "dreq", "dresp", "dcon", "dses", "wrew",
		}),
		"stats BACKEND": concat(commonAgree, hrspColumns, h2Columns, h1Columns, []string{
			"qcur", "qmax", "scur", "stot", "req_tot", "econ", "eresp", "wretr", "wredis", "weight",
			"uweight", "act", "bck", "lbtot", "connect", "reuse", "h1_bytes_in", "h1_bytes_out",
		}),
	}
)

// knownCSVDifferences are the columns where edgeproxy disagrees with
// HAProxy 2.6 in this scenario, by row type ("0" frontend, "1" backend,
// "2" server; "stats" for the stats listener's own rows), with the reason.
// They are logged, not asserted.
var knownCSVDifferences = map[string]map[string]string{
	"0": {
		"bin":          bodiesOnly,
		"bout":         bodiesOnly,
		"h1_bytes_in":  bodiesOnly,
		"h1_bytes_out": bodiesOnly,
	},
	"1": {
		"econ":         "HAProxy does not count a failed connect that a redispatch rescued; edgeproxy counts every failed attempt",
		"bin":          bodiesOnly,
		"bout":         bodiesOnly,
		"h1_bytes_in":  bodiesOnly,
		"h1_bytes_out": bodiesOnly,
	},
	"2": {
		"stot": "HAProxy counts the failed connect attempt as a session of the refusing server (stot = lbtot); edgeproxy only requests sent",
		"econ": "HAProxy does not count a failed connect that a redispatch rescued; edgeproxy counts every failed attempt",
		"bin":  bodiesOnly,
		"bout": bodiesOnly,
	},
}

const bodiesOnly = "edgeproxy counts bodies only, HAProxy whole messages (documented gap)"

// compareCSVRow asserts the agreeing columns of one line and logs the known
// differences that show on it. It returns the known differences that did.
func compareCSVRow(t *testing.T, px, sv string, e, h map[string]string) (shown []string) {
	t.Helper()
	kind := h["type"]
	if px == "stats" {
		kind = "stats " + sv
	}
	cols := agreeByType[kind]
	if len(cols) == 0 {
		t.Fatalf("%s,%s: no columns to compare for a line of type %q", px, sv, kind)
	}
	for _, c := range cols {
		if e[c] != h[c] {
			t.Errorf("%s,%s: %s is %q in edgeproxy, %q in haproxy", px, sv, c, e[c], h[c])
		}
	}
	known := knownCSVDifferences[kind]
	for _, c := range slices.Sorted(maps.Keys(known)) {
		if e[c] == h[c] {
			continue
		}
		t.Logf("KNOWN DIFFERENCE %s,%s %s: edgeproxy %q, haproxy %q: %s", px, sv, c, e[c], h[c], known[c])
		shown = append(shown, kind+"/"+c)
	}
	return shown
}

// compareStatsListener asserts what the stats listener's own lines show
// in both: a BACKEND with its frontend's bytes (and the agreeing zeros
// compareCSVRow checked), and a frontend counting the scrapes themselves.
func compareStatsListener(t *testing.T, e, h *statsCSV) {
	t.Helper()
	for name, c := range map[string]*statsCSV{"edgeproxy": e, "haproxy": h} {
		fe, be := c.row(t, "stats", "FRONTEND"), c.row(t, "stats", "BACKEND")
		for _, col := range []string{"bin", "bout"} {
			if fe[col] != be[col] {
				t.Errorf("%s: stats BACKEND %s is %q, FRONTEND %q; want them equal", name, col, be[col], fe[col])
			}
		}
		if fe["stot"] == "0" || fe["h1_total_connections"] != fe["stot"] || fe["h1_open_connections"] != fe["scur"] {
			t.Errorf("%s: stats FRONTEND stot %s scur %s h1_total_connections %s h1_open_connections %s",
				name, fe["stot"], fe["scur"], fe["h1_total_connections"], fe["h1_open_connections"])
		}
	}
}

// wantColumns asserts numeric columns of one line.
func wantColumns(t *testing.T, name string, c *statsCSV, px, sv string, want map[string]int) {
	t.Helper()
	r := c.row(t, px, sv)
	for _, col := range slices.Sorted(maps.Keys(want)) {
		if got := r[col]; got != strconv.Itoa(want[col]) {
			t.Errorf("%s: %s,%s %s = %q, want %d", name, px, sv, col, got, want[col])
		}
	}
}

// agreeingMetrics are the haproxy_* families both must export with the
// same series (label sets) and values, for every proxy but "stats".
var agreeingMetrics = []string{
	"haproxy_frontend_current_sessions", "haproxy_frontend_sessions_total",
	"haproxy_frontend_connections_total", "haproxy_frontend_http_requests_total",
	"haproxy_frontend_http_responses_total", "haproxy_frontend_request_errors_total",
	"haproxy_frontend_intercepted_requests_total", "haproxy_frontend_status",

	"haproxy_backend_current_sessions", "haproxy_backend_sessions_total",
	"haproxy_backend_http_requests_total", "haproxy_backend_http_responses_total",
	"haproxy_backend_response_errors_total", "haproxy_backend_redispatch_warnings_total",
	"haproxy_backend_retry_warnings_total", "haproxy_server_retry_warnings_total",
	"haproxy_server_redispatch_warnings_total",
	"haproxy_backend_loadbalanced_total", "haproxy_backend_connection_attempts_total",
	"haproxy_backend_connection_reuses_total", "haproxy_backend_active_servers",
	"haproxy_backend_backup_servers", "haproxy_backend_weight", "haproxy_backend_uweight",
	"haproxy_backend_status", "haproxy_backend_agg_server_status",

	"haproxy_server_current_sessions", "haproxy_server_http_responses_total",
	"haproxy_server_response_errors_total", "haproxy_server_loadbalanced_total",
	"haproxy_server_connection_attempts_total", "haproxy_server_connection_reuses_total",
	"haproxy_server_idle_connections_current", "haproxy_server_used_connections_current",
	"haproxy_server_safe_idle_connections_current", "haproxy_server_unsafe_idle_connections_current",
	"haproxy_server_weight", "haproxy_server_uweight", "haproxy_server_status",
	"haproxy_server_check_up_down_total", "haproxy_server_check_failures_total",
	"haproxy_server_check_status", "haproxy_server_check_code",
}

// sameSeriesMetrics are families both must export with the same series;
// their values are timings that may differ.
var sameSeriesMetrics = []string{"haproxy_server_check_duration_seconds"}

// knownMetricDifferences are families where edgeproxy disagrees with
// HAProxy 2.6's exporter in this scenario, with the reason; logged only.
var knownMetricDifferences = map[string]string{
	"haproxy_frontend_bytes_in_total":         "bodies only (documented gap)",
	"haproxy_frontend_bytes_out_total":        "bodies only (documented gap)",
	"haproxy_backend_bytes_in_total":          "bodies only (documented gap)",
	"haproxy_backend_bytes_out_total":         "bodies only (documented gap)",
	"haproxy_server_bytes_in_total":           "bodies only (documented gap)",
	"haproxy_server_bytes_out_total":          "bodies only (documented gap)",
	"haproxy_backend_connection_errors_total": "every failed attempt vs requests that finally failed (CSV econ)",
	"haproxy_server_connection_errors_total":  "every failed attempt vs requests that finally failed (CSV econ)",
	"haproxy_server_sessions_total":           "failed connect attempts not counted (CSV stot)",
}

// compareMetrics asserts agreeingMetrics and sameSeriesMetrics, that
// edgeproxy exports no haproxy_* family HAProxy's exporter lacks, and logs
// the known differences.
func compareMetrics(t *testing.T, e, h *promScrape) {
	t.Helper()
	// HAProxy exports an empty CSV cell as NaN; edgeproxy leaves such a
	// series out: both count as absent.
	pick := func(m *promScrape, name string) map[string]float64 {
		out := map[string]float64{}
		for s, v := range m.values {
			if s.name == name && !strings.Contains(s.labels, `proxy="stats"`) && !math.IsNaN(v) {
				out[s.labels] = v
			}
		}
		return out
	}
	for _, name := range agreeingMetrics {
		es, hs := pick(e, name), pick(h, name)
		if len(hs) == 0 {
			t.Errorf("haproxy does not export %s: the comparison relies on it", name)
			continue
		}
		if et, ht := e.types[name], h.types[name]; et != ht {
			t.Errorf("%s is a %v in edgeproxy, a %v in haproxy", name, et, ht)
		}
		for _, l := range slices.Sorted(maps.Keys(hs)) {
			ev, ok := es[l]
			switch {
			case !ok:
				t.Errorf("edgeproxy lacks %s{%s} (haproxy: %v)", name, l, hs[l])
			case ev != hs[l]:
				t.Errorf("%s{%s} is %v in edgeproxy, %v in haproxy", name, l, ev, hs[l])
			}
		}
		for _, l := range slices.Sorted(maps.Keys(es)) {
			if _, ok := hs[l]; !ok {
				t.Errorf("edgeproxy exports %s{%s}, haproxy does not", name, l)
			}
		}
	}
	for _, name := range sameSeriesMetrics {
		es, hs := pick(e, name), pick(h, name)
		if len(hs) == 0 {
			t.Errorf("haproxy does not export %s: the comparison relies on it", name)
		}
		if ek, hk := slices.Sorted(maps.Keys(es)), slices.Sorted(maps.Keys(hs)); !slices.Equal(ek, hk) {
			t.Errorf("%s series differ:\nedgeproxy %v\nhaproxy   %v", name, ek, hk)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(e.types)) {
		if _, ok := h.types[name]; strings.HasPrefix(name, "haproxy_") && !ok {
			t.Errorf("edgeproxy exports %s, which HAProxy 2.6's exporter does not", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(knownMetricDifferences)) {
		es, hs := pick(e, name), pick(h, name)
		if maps.Equal(es, hs) {
			t.Logf("known difference %s did not show: %s", name, knownMetricDifferences[name])
			continue
		}
		if len(es) == 0 || len(hs) == 0 {
			t.Logf("KNOWN DIFFERENCE %s: edgeproxy has %d series, haproxy %d: %s", name, len(es), len(hs), knownMetricDifferences[name])
			continue
		}
		var diffs []string
		for _, l := range slices.Sorted(maps.Keys(hs)) {
			if ev, ok := es[l]; !ok || ev != hs[l] {
				diffs = append(diffs, fmt.Sprintf("{%s} edgeproxy %s haproxy %v", l, present(ev, ok), hs[l]))
			}
		}
		for _, l := range slices.Sorted(maps.Keys(es)) {
			if _, ok := hs[l]; !ok {
				diffs = append(diffs, fmt.Sprintf("{%s} edgeproxy %v haproxy absent", l, es[l]))
			}
		}
		t.Logf("KNOWN DIFFERENCE %s: %s:\n  %s", name, knownMetricDifferences[name], strings.Join(diffs, "\n  "))
	}
}

func present(v float64, ok bool) string {
	if !ok {
		return "absent"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
