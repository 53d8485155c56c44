package stats

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeproxy/edgeproxy/proxy"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMetricsMatchTraffic(t *testing.T) {
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "edgeproxy_test_events_total", Help: "test"})
	extra.Add(3)
	sc := newScenario(t, Options{Extra: []prometheus.Collector{extra}})
	resp, body := fetch(t, nil, sc.url+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: status %d", resp.StatusCode)
	}
	mfs := metricFamilies(t, body)

	fe := map[string]string{"proxy": "fe"}
	be := func(name string) map[string]string { return map[string]string{"proxy": name} }
	srv := func(b, s string) map[string]string { return map[string]string{"proxy": b, "server": s} }
	with := func(m map[string]string, k, v string) map[string]string {
		c := map[string]string{k: v}
		for k, v := range m {
			c[k] = v
		}
		return c
	}
	upload := float64(scUploadSize)
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"haproxy_frontend_sessions_total", fe, scFeConns},
		{"haproxy_frontend_connections_total", fe, scFeConns},
		{"haproxy_frontend_http_requests_total", fe, 11},
		{"haproxy_frontend_request_errors_total", fe, 1},
		{"haproxy_frontend_bytes_in_total", fe, upload},
		{"haproxy_frontend_bytes_out_total", fe, scAppRequests * 4},
		{"haproxy_frontend_http_responses_total", with(fe, "code", "1xx"), 0},
		{"haproxy_frontend_http_responses_total", with(fe, "code", "2xx"), 5},
		{"haproxy_frontend_http_responses_total", with(fe, "code", "3xx"), 0},
		{"haproxy_frontend_http_responses_total", with(fe, "code", "4xx"), 3},
		{"haproxy_frontend_http_responses_total", with(fe, "code", "5xx"), 3},
		{"haproxy_frontend_http_responses_total", with(fe, "code", "other"), 0},
		{"haproxy_frontend_status", with(fe, "state", "UP"), 1},
		{"haproxy_frontend_status", with(fe, "state", "DOWN"), 0},
		{"haproxy_frontend_intercepted_requests_total", fe, 0},

		{"haproxy_backend_current_sessions", be("app"), 0},
		{"haproxy_backend_sessions_total", be("app"), scAppRequests},
		{"haproxy_backend_http_requests_total", be("app"), scAppRequests},
		{"haproxy_backend_http_responses_total", with(be("app"), "code", "2xx"), 5},
		{"haproxy_backend_http_responses_total", with(be("app"), "code", "4xx"), 2},
		{"haproxy_backend_http_responses_total", with(be("app"), "code", "5xx"), 1},
		{"haproxy_backend_http_responses_total", with(be("empty"), "code", "5xx"), 1},
		{"haproxy_backend_connection_errors_total", be("dead"), 4},
		{"haproxy_backend_connection_errors_total", be("empty"), 1},
		{"haproxy_backend_response_errors_total", be("app"), 0},
		{"haproxy_backend_retry_warnings_total", be("dead"), 3},
		{"haproxy_backend_redispatch_warnings_total", be("dead"), 0},
		{"haproxy_backend_bytes_in_total", be("app"), upload},
		{"haproxy_backend_bytes_out_total", be("app"), scAppRequests * 4},
		{"haproxy_backend_status", with(be("app"), "state", "UP"), 1},
		{"haproxy_backend_status", with(be("app"), "state", "DOWN"), 0},
		{"haproxy_backend_status", with(be("empty"), "state", "UP"), 1},
		{"haproxy_backend_active_servers", be("app"), 2},
		{"haproxy_backend_backup_servers", be("app"), 0},
		{"haproxy_backend_weight", be("app"), 2},
		{"haproxy_backend_loadbalanced_total", be("dead"), 4},
		{"haproxy_backend_agg_server_status", with(be("app"), "state", "UP"), 2},
		{"haproxy_backend_agg_server_status", with(be("app"), "state", "DOWN"), 0},
		{"haproxy_backend_agg_server_status", with(be("dead"), "state", "UP"), 1},

		{"haproxy_server_current_sessions", srv("app", "s0"), 0},
		{"haproxy_server_status", with(srv("app", "s0"), "state", "UP"), 1},
		{"haproxy_server_status", with(srv("app", "s0"), "state", "DOWN"), 0},
		{"haproxy_server_status", with(srv("app", "s0"), "state", "MAINT"), 0},
		{"haproxy_server_status", with(srv("app", "s0"), "state", "DRAIN"), 0},
		{"haproxy_server_status", with(srv("app", "s0"), "state", "NOLB"), 0},
		{"haproxy_server_weight", srv("app", "s1"), 1},
		{"haproxy_server_connection_errors_total", srv("dead", "gone"), 4},
		{"haproxy_server_retry_warnings_total", srv("dead", "gone"), 3},
		{"haproxy_server_redispatch_warnings_total", srv("dead", "gone"), 0},
		{"haproxy_server_connection_attempts_total", srv("dead", "gone"), 4},
		{"haproxy_server_response_errors_total", srv("app", "s0"), 0},
		{"haproxy_server_sessions_total", srv("other", "o0"), 1},
		{"haproxy_server_http_responses_total", with(srv("other", "o0"), "code", "2xx"), 1},
		{"haproxy_server_bytes_out_total", srv("other", "o0"), 4},
		{"haproxy_server_idle_connections_current", srv("dead", "gone"), 0},
		{"haproxy_server_safe_idle_connections_current", srv("dead", "gone"), 0},
		{"haproxy_server_unsafe_idle_connections_current", srv("dead", "gone"), 0},

		{"edgeproxy_test_events_total", map[string]string{}, 3},
	}
	for _, tt := range tests {
		got, ok := sample(mfs, tt.name, tt.labels)
		if !ok {
			t.Errorf("no %s%v", tt.name, tt.labels)
			continue
		}
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}

	// Servers add up to the backend; idle connections are the pool's.
	var sessions, bytesIn float64
	for i, s := range sc.app.Servers() {
		name := "s" + strconv.Itoa(i)
		v, _ := sample(mfs, "haproxy_server_sessions_total", srv("app", name))
		sessions += v
		v, _ = sample(mfs, "haproxy_server_bytes_in_total", srv("app", name))
		bytesIn += v
		for _, m := range []string{"haproxy_server_idle_connections_current", "haproxy_server_safe_idle_connections_current"} {
			if v, ok := sample(mfs, m, srv("app", name)); !ok || v != float64(s.IdleConns()) {
				t.Errorf("%s %s = %v, want %d", name, m, v, s.IdleConns())
			}
		}
	}
	if sessions != scAppRequests || bytesIn != upload {
		t.Errorf("app servers sum to %v sessions and %v bytes in", sessions, bytesIn)
	}

	// edgeproxy_build_info is 1 with its labels.
	bi := mfs["edgeproxy_build_info"]
	if bi == nil || len(bi.Metric) != 1 || bi.Metric[0].GetGauge().GetValue() != 1 {
		t.Fatalf("edgeproxy_build_info: %v", bi)
	}
	lbl := map[string]string{}
	for _, lp := range bi.Metric[0].Label {
		lbl[lp.GetName()] = lp.GetValue()
	}
	if lbl["goversion"] != runtime.Version() || lbl["version"] == "" || lbl["revision"] == "" {
		t.Errorf("edgeproxy_build_info labels %v", lbl)
	}
}

// Every haproxy_* family has promex's type and label names.
func TestMetricsTypesAndLabels(t *testing.T) {
	sc := newScenario(t)
	_, body := fetch(t, nil, sc.url+"/metrics")
	mfs := metricFamilies(t, body)
	n := 0
	for name, mf := range mfs {
		scope, ok := strings.CutPrefix(name, "haproxy_")
		if !ok {
			continue
		}
		n++
		wantType := dto.MetricType_GAUGE
		if strings.HasSuffix(name, "_total") {
			wantType = dto.MetricType_COUNTER
		}
		if mf.GetType() != wantType {
			t.Errorf("%s is %v, want %v", name, mf.GetType(), wantType)
		}
		want := []string{"proxy"}
		if strings.HasPrefix(scope, "server_") {
			want = append(want, "server")
		}
		switch {
		case strings.HasSuffix(name, "_http_responses_total"):
			want = append(want, "code")
		case strings.HasSuffix(name, "_status"):
			want = append(want, "state")
		}
		slices.Sort(want)
		for _, m := range mf.Metric {
			var got []string
			for _, lp := range m.Label {
				got = append(got, lp.GetName())
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s has labels %v, want %v", name, got, want)
				break
			}
		}
	}
	if n < 40 {
		t.Errorf("only %d haproxy_* families", n)
	}
	// The names the issue asks for are all there.
	for _, name := range []string{
		"haproxy_frontend_current_sessions", "haproxy_frontend_sessions_total",
		"haproxy_frontend_http_requests_total", "haproxy_frontend_bytes_in_total",
		"haproxy_frontend_bytes_out_total", "haproxy_frontend_http_responses_total",
		"haproxy_frontend_request_errors_total", "haproxy_backend_current_sessions",
		"haproxy_backend_sessions_total", "haproxy_backend_http_responses_total",
		"haproxy_backend_connection_errors_total", "haproxy_backend_response_errors_total",
		"haproxy_backend_retry_warnings_total", "haproxy_backend_redispatch_warnings_total",
		"haproxy_backend_bytes_in_total", "haproxy_backend_bytes_out_total",
		"haproxy_backend_status", "haproxy_backend_active_servers",
		"haproxy_server_current_sessions", "haproxy_server_sessions_total",
		"haproxy_server_http_responses_total", "haproxy_server_status", "haproxy_server_weight",
		"haproxy_server_connection_errors_total", "haproxy_server_response_errors_total",
		"haproxy_server_retry_warnings_total", "haproxy_server_redispatch_warnings_total",
		"haproxy_server_bytes_in_total", "haproxy_server_bytes_out_total",
		"haproxy_server_idle_connections_current",
	} {
		if mfs[name] == nil {
			t.Errorf("missing %s", name)
		}
	}
	// HAProxy 2.6's exporter has no per-server active or backup flag.
	for _, name := range []string{"haproxy_server_active", "haproxy_server_backup"} {
		if mfs[name] != nil {
			t.Errorf("%s is exported; HAProxy 2.6 has no such metric", name)
		}
	}
}

// /metrics and the CSV read the same counters: every exported value equals
// its CSV cell (rates aside, which move between the two reads).
func TestMetricsAgreeWithCSV(t *testing.T) {
	sc := newScenario(t)
	sc.settle(t)
	rep := sc.csv(t)
	_, body := fetch(t, nil, sc.url+"/metrics")
	mfs := metricFamilies(t, body)
	moving := map[int]bool{colSmax: true, colRateMax: true, colReqRateMax: true, colConnRateMax: true, colLastsess: true}
	checked := 0
	for _, key := range rep.order {
		r := rep.rows[key]
		if r["pxname"] == selfName {
			continue // the stats listener counts these very requests
		}
		typ := atoi(t, r["type"])
		labels := map[string]string{"proxy": r["pxname"]}
		if typ == typeServer {
			labels["server"] = r["svname"]
		}
		for _, m := range promMetrics {
			if m.scopes&(1<<typ) == 0 || moving[m.col] {
				continue
			}
			name := "haproxy_" + scopeNames[typ] + "_" + m.suffix
			cellv := r[columnNames[m.col]]
			got, ok := sample(mfs, name, labels)
			if cellv == "" {
				if ok {
					t.Errorf("%s%v = %v, but the CSV cell is empty", name, labels, got)
				}
				continue
			}
			if !ok || strconv.FormatFloat(got, 'f', -1, 64) != cellv {
				t.Errorf("%s%v = %v (present %v), CSV %s = %s", name, labels, got, ok, columnNames[m.col], cellv)
			}
			checked++
		}
	}
	if checked < 100 {
		t.Errorf("only %d values compared", checked)
	}
}

// A collector that cannot be registered is logged and left out; the rest
// still serve.
func TestMetricsExtraConflictIsLogged(t *testing.T) {
	var log logRecorder
	dup := prometheus.NewGauge(prometheus.GaugeOpts{Name: "edgeproxy_build_info", Help: "clash"})
	b := newBackend("be", spec("s", "127.0.0.1:1"))
	_, url := startStats(t, Options{
		Backends: func() []*proxy.Backend { return []*proxy.Backend{b} },
		Extra:    []prometheus.Collector{dup},
		Logf:     log.logf,
	})
	if !log.contains("extra collector left out") {
		t.Errorf("conflict not logged: %v", log.lines)
	}
	_, body := fetch(t, nil, url+"/metrics")
	mfs := metricFamilies(t, body)
	if v, ok := sample(mfs, "haproxy_server_status", map[string]string{"proxy": "be", "server": "s", "state": "UP"}); !ok || v != 1 {
		t.Errorf("server status %v %v", v, ok)
	}
}
