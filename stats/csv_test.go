package stats

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// The header is HAProxy 2.6's, byte for byte: testdata holds it as
// Debian's HAProxy 2.6.12 prints it, not as this code writes it.
func TestCSVHeaderIsHAProxy26(t *testing.T) {
	want, err := os.ReadFile("testdata/haproxy-2.6-header.csv")
	if err != nil {
		t.Fatal(err)
	}
	if csvHeader != string(want) {
		t.Fatalf("header differs from HAProxy 2.6's\n got: %s\nwant: %s", csvHeader, want)
	}
	sc := newScenario(t)
	_, body := fetch(t, nil, sc.url+"/haproxy?stats;csv")
	if !strings.HasPrefix(body, string(want)) {
		t.Fatalf("served CSV does not start with the 2.6 header:\n%.300s", body)
	}
	// Positions that tools hard-code.
	for name, pos := range map[string]int{"pxname": 0, "svname": 1, "scur": 4, "stot": 7,
		"status": 17, "type": 32, "hrsp_5xx": 43, "req_tot": 48, "uweight": 99,
		"agg_check_status": 102, "-": 103, "ssl_sess": 104, "h2_headers_rcvd": 107,
		"h1_open_connections": 120, "h1_spliced_bytes_out": 127} {
		if columnNames[pos] != name {
			t.Errorf("column %d is %q, want %q", pos, columnNames[pos], name)
		}
	}
}

func TestCSVCountsTrafficThroughTheProxy(t *testing.T) {
	sc := newScenario(t)
	sc.settle(t)
	rep := sc.csv(t)

	wantOrder := []string{"stats/FRONTEND", "stats/BACKEND", "fe/FRONTEND", "fe2/FRONTEND",
		"app/s0", "app/s1", "app/BACKEND", "dead/gone", "dead/BACKEND", "empty/BACKEND",
		"other/o0", "other/BACKEND"}
	if strings.Join(rep.order, " ") != strings.Join(wantOrder, " ") {
		t.Fatalf("rows %v\nwant %v", rep.order, wantOrder)
	}
	for _, k := range rep.order {
		if n := len(rep.rows[k]); n != numColumns+1 { // names + the trailing empty one
			t.Errorf("%s has %d fields", k, n)
		}
	}

	tests := []struct {
		row  string
		want map[string]string
	}{
		{"fe/FRONTEND", map[string]string{
			"type": "0", "status": "OPEN", "iid": "2", "sid": "0", "pid": "1", "mode": "http",
			"stot": strconv.Itoa(scFeConns), "conn_tot": strconv.Itoa(scFeConns),
			"ereq": "1", "qcur": "", "econ": "",
			// app 8 + empty 1 (no server) + dead 1 (502 after the
			// retries) + 1 refused: every request the frontend answered.
			"req_tot":  "11",
			"hrsp_1xx": "0", "hrsp_2xx": "5", "hrsp_3xx": "0", "hrsp_4xx": "3", "hrsp_5xx": "3", "hrsp_other": "0",
			"bin": strconv.Itoa(scUploadSize), "bout": strconv.Itoa(scAppRequests * 4),
			"dreq": "0", "dresp": "0", "intercepted": "0", "-": "-", "h2_total_connections": "0",
			"ssl_sess": "0", "ssl_reused_sess": "0", "ssl_failed_handshake": "0", "eint": "0",
			// The h1 module: client connections and requests, bytes as
			// in bin and bout.
			"h1_open_connections": "0", "h1_open_streams": "0",
			"h1_total_connections": strconv.Itoa(scFeConns), "h1_total_streams": "11",
			"h1_bytes_in": strconv.Itoa(scUploadSize), "h1_bytes_out": strconv.Itoa(scAppRequests * 4),
			"h1_spliced_bytes_in": "0", "h1_spliced_bytes_out": "0",
		}},
		{"fe2/FRONTEND", map[string]string{
			"iid": "3", "stot": "2", "req_tot": "2", "hrsp_2xx": "1", "hrsp_5xx": "1", "ereq": "0",
		}},
		{"app/BACKEND", map[string]string{
			"type": "1", "status": "UP", "iid": "4", "sid": "0", "weight": "2", "uweight": "2", "act": "2", "bck": "0",
			"scur": "0", "stot": "8", "req_tot": "8", "lbtot": "8",
			"hrsp_2xx": "5", "hrsp_4xx": "2", "hrsp_5xx": "1", "hrsp_other": "0",
			"econ": "0", "eresp": "0", "wretr": "0", "wredis": "0", "qcur": "0",
			"bin": strconv.Itoa(scUploadSize), "bout": "32", "ereq": "",
			"agg_server_status": "0", "h2_total_connections": "0", "ssl_sess": "0", "eint": "0",
			// The h1 module: the servers' side, so bytes in are the
			// responses.
			"h1_open_streams": "0", "h1_total_streams": "8",
			"h1_bytes_in": "32", "h1_bytes_out": strconv.Itoa(scUploadSize),
			"h1_spliced_bytes_in": "0", "h1_spliced_bytes_out": "0",
		}},
		{"dead/gone", map[string]string{
			"type": "2", "status": "UP", "iid": "5", "sid": "1", "weight": "1", "act": "1", "bck": "0",
			// one request: 4 failed connects (3 retries on the only server)
			"econ": "4", "wretr": "3", "wredis": "0", "stot": "0", "lbtot": "4", "connect": "4", "reuse": "0",
			"req_tot": "0", "hrsp_5xx": "0", "srv_icur": "0", "h2_total_connections": "",
			"ssl_sess": "0", "eint": "0", "h1_total_connections": "",
		}},
		{"dead/BACKEND", map[string]string{"econ": "4", "wretr": "3", "stot": "0", "status": "UP", "hrsp_5xx": "1",
			"h1_open_connections": "0", "h1_total_connections": "4", "h1_total_streams": "4"}},
		{"empty/BACKEND", map[string]string{
			// no server: UP as HAProxy shows it; the request got 503
			"status": "UP", "act": "0", "weight": "0", "stot": "1", "req_tot": "1", "econ": "1", "hrsp_5xx": "1",
		}},
		{"other/o0", map[string]string{"stot": "1", "hrsp_2xx": "1", "iid": "7", "sid": "1"}},
	}
	for _, tt := range tests {
		got := rep.row(t, tt.row)
		for col, want := range tt.want {
			if got[col] != want {
				t.Errorf("%s %s = %q, want %q", tt.row, col, got[col], want)
			}
		}
	}

	// Servers add up to their backend, and connections add up to requests.
	var stot, hrsp2, bout, conns int
	for i, name := range []string{"app/s0", "app/s1"} {
		r := rep.row(t, name)
		if r["status"] != "UP" || r["weight"] != "1" || r["sid"] != strconv.Itoa(i+1) {
			t.Errorf("%s: status %s weight %s sid %s", name, r["status"], r["weight"], r["sid"])
		}
		stot += atoi(t, r["stot"])
		hrsp2 += atoi(t, r["hrsp_2xx"])
		bout += atoi(t, r["bout"])
		conns += atoi(t, r["connect"]) + atoi(t, r["reuse"])
		if r["stot"] == "0" {
			t.Errorf("%s took no request: round robin over two servers", name)
		}
	}
	if stot != scAppRequests || hrsp2 != 5 || bout != 32 || conns != scAppRequests {
		t.Errorf("app servers sum to stot %d, 2xx %d, bout %d, connections %d", stot, hrsp2, bout, conns)
	}
	// The backend's h1 connections are those its servers opened, and
	// those still open, in use or idle.
	app := rep.row(t, "app/BACKEND")
	if got, want := app["h1_total_connections"], app["connect"]; got != want {
		t.Errorf("app h1_total_connections %s, want connect %s", got, want)
	}
	idle := 0
	for _, s := range sc.app.Servers() {
		idle += s.IdleConns()
	}
	if got := atoi(t, app["h1_open_connections"]); got != idle {
		t.Errorf("app h1_open_connections %d, want the %d idle ones", got, idle)
	}
	// Idle pooled connections are the pool's own count.
	for i, s := range sc.app.Servers() {
		if got, want := rep.row(t, "app/s"+strconv.Itoa(i))["srv_icur"], strconv.Itoa(s.IdleConns()); got != want {
			t.Errorf("s%d srv_icur %s, want %s", i, got, want)
		}
	}
}

// Server states follow the proxy: down, weight 0, back up.
func TestCSVServerStates(t *testing.T) {
	sc := newScenario(t)
	s0, s1 := sc.app.Servers()[0], sc.app.Servers()[1]

	s1.SetDown(true)
	rep := sc.csv(t)
	check := func(row, col, want string) {
		t.Helper()
		if got := rep.row(t, row)[col]; got != want {
			t.Errorf("%s %s = %q, want %q", row, col, got, want)
		}
	}
	check("app/s1", "status", "DOWN")
	check("app/BACKEND", "status", "UP")
	check("app/BACKEND", "act", "1")
	check("app/BACKEND", "weight", "1")

	s0.SetDown(true)
	rep = sc.csv(t)
	check("app/BACKEND", "status", "DOWN")
	check("app/BACKEND", "act", "0")

	s0.SetDown(false)
	s1.SetDown(false)
	sc.app.SetServers([]proxy.ServerSpec{
		{Name: "s0", Addr: s0.Addr, Weight: 0},
		{Name: "s1", Addr: s1.Addr, Weight: 3},
	})
	rep = sc.csv(t)
	check("app/s0", "status", "DRAIN")
	check("app/s0", "weight", "0")
	check("app/s1", "status", "UP")
	check("app/s1", "weight", "3")
	check("app/BACKEND", "weight", "3")
	check("app/BACKEND", "act", "1")
	// Counters survive the new server set (same addresses).
	check("app/BACKEND", "stot", strconv.Itoa(scAppRequests))

	// ";up" shows only the servers that are UP.
	_, body := fetch(t, nil, sc.url+"/haproxy?stats;csv;up")
	up := parseCSV(t, body)
	if _, ok := up.rows["app/s0"]; ok {
		t.Error(";up still lists the DRAIN server")
	}
	if _, ok := up.rows["app/s1"]; !ok {
		t.Error(";up hides an UP server")
	}
}

// The stats listener reports itself, as HAProxy's "listen stats" does.
func TestCSVStatsListenerRows(t *testing.T) {
	sc := newScenario(t)
	fetch(t, nil, sc.url+"/_haproxy_health_check")
	fetch(t, nil, sc.url+"/haproxy?stats")
	rep := sc.csv(t) // the third request, and the second stats page
	fe, be := rep.row(t, "stats/FRONTEND"), rep.row(t, "stats/BACKEND")
	if fe["type"] != "0" || fe["status"] != "OPEN" || fe["iid"] != "1" || be["type"] != "1" || be["status"] != "UP" {
		t.Fatalf("stats rows: FRONTEND %s/%s/%s BACKEND %s/%s", fe["type"], fe["status"], fe["iid"], be["type"], be["status"])
	}
	if fe["req_tot"] != "3" || fe["intercepted"] != "3" || fe["hrsp_2xx"] != "2" {
		t.Errorf("stats FRONTEND req_tot %s intercepted %s 2xx %s, want 3, 3, 2", fe["req_tot"], fe["intercepted"], fe["hrsp_2xx"])
	}
	if atoi(t, fe["stot"]) < 1 || atoi(t, fe["bin"]) == 0 || atoi(t, fe["bout"]) == 0 {
		t.Errorf("stats FRONTEND stot %s bin %s bout %s", fe["stot"], fe["bin"], fe["bout"])
	}
	// The h1 module counts the listener's connections and requests, this
	// one in flight.
	for col, want := range map[string]string{
		"h1_open_connections": fe["scur"], "h1_open_streams": "1", "h1_total_connections": fe["stot"],
		"h1_total_streams": "3", "h1_bytes_in": fe["bin"], "h1_bytes_out": fe["bout"],
	} {
		if fe[col] != want {
			t.Errorf("stats FRONTEND %s = %q, want %q", col, fe[col], want)
		}
	}
	// Every request was intercepted at the frontend: as in HAProxy, the
	// BACKEND counts no session, request or response, and the frontend's
	// bytes.
	for col, want := range map[string]string{
		"scur": "0", "stot": "0", "req_tot": "0", "hrsp_1xx": "0", "hrsp_2xx": "0", "hrsp_3xx": "0",
		"hrsp_4xx": "0", "hrsp_5xx": "0", "hrsp_other": "0", "bin": fe["bin"], "bout": fe["bout"],
		"eint": "0", "ssl_sess": "0", "h1_total_streams": "0", "h1_bytes_in": "0",
	} {
		if be[col] != want {
			t.Errorf("stats BACKEND %s = %q, want %q", col, be[col], want)
		}
	}
}

// Names with commas or quotes are quoted as RFC 4180 says; anything else
// is not.
func TestCSVQuoting(t *testing.T) {
	b := newBackend("be,1", spec(`q"x`, "127.0.0.1:1"), spec("plain", "127.0.0.1:2"))
	s := New(Options{Backends: func() []*proxy.Backend { return []*proxy.Backend{b} }})
	var buf bytes.Buffer
	if err := writeCSV(&buf, s.build(time.Time{}), view{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"\n\"be,1\",\"q\"\"x\",", "\n\"be,1\",plain,", "\n\"be,1\",BACKEND,"} {
		if !strings.Contains(out, want) {
			t.Errorf("CSV lacks %q:\n%s", want, out)
		}
	}
	rep := parseCSV(t, out)
	rep.row(t, `be,1/q"x`)
}

// A fixed set of counters renders to a fixed report (no sampler: the rate
// columns stay empty). Run with -update to rewrite testdata/report.csv.
func TestCSVGolden(t *testing.T) {
	app := newBackend("app", spec("agentip_10.0.1.5_10001", "127.0.0.1:1"), spec("agentip_10.0.1.6_10002", "127.0.0.1:2"))
	drain := newBackend("drain", proxy.ServerSpec{Name: "w0", Addr: "127.0.0.1:3", Weight: 0})
	s0, s1 := app.Servers()[0], app.Servers()[1]
	s0.Stats.Requests.Add(7)
	s0.Stats.Responses[2].Add(6)
	s0.Stats.Responses[5].Add(1)
	s0.Stats.BytesOut.Add(700)
	s0.Stats.NewConns.Add(2)
	s0.Stats.ReusedConns.Add(5)
	s1.Stats.Requests.Add(3)
	s1.Stats.Responses[4].Add(3)
	s1.Stats.ConnErrors.Add(1)
	s1.Stats.Retries.Add(1)
	s1.Stats.Redispatch.Add(1)
	s1.Stats.RespErrors.Add(2)
	s1.Stats.NewConns.Add(3)
	s1.Stats.Active.Add(1)
	s1.SetDown(true)
	app.Stats.NoServer.Add(2)

	s := New(Options{
		Backends: func() []*proxy.Backend { return []*proxy.Backend{app, drain} },
	})
	var buf bytes.Buffer
	if err := writeCSV(&buf, s.build(time.Time{}), view{}); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.csv")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("report differs from %s (run with -update after checking)\n got:\n%s\nwant:\n%s", golden, buf.Bytes(), want)
	}
}

func TestParseView(t *testing.T) {
	tests := []struct {
		query string
		ok    bool
		want  view
	}{
		{"stats", true, view{}},
		{"stats;csv", true, view{csv: true}},
		{"stats&csv", true, view{csv: true}},
		{"stats;csv;norefresh", true, view{csv: true, norefresh: true}},
		{"stats;up;no-maint", true, view{up: true, noMaint: true}},
		{"stats;unknown", true, view{}},
		{"", false, view{}},
		{"csv;stats", false, view{}},
		{"foo", false, view{}},
	}
	for _, tt := range tests {
		got, ok := parseView(tt.query)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseView(%q) = %+v, %v; want %+v, %v", tt.query, got, ok, tt.want, tt.ok)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// The sampler runs while the listener serves: rates appear within a few
// seconds of traffic.
func TestCSVRatesWhileServing(t *testing.T) {
	sc := newScenario(t)
	waitFor(t, "rates of fe", func() bool {
		r := sc.csv(t).row(t, "fe/FRONTEND")
		return r["rate"] != "" && r["rate_max"] != "" && r["req_rate"] != ""
	})
	// The sampler has taken a sample: traffic from now on shows in the
	// next one.
	for range 3 {
		if resp, _ := fetch(t, nil, sc.feURL+"/"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := sc.csv(t)
		fe, app := r.row(t, "fe/FRONTEND"), r.row(t, "app/BACKEND")
		if atoi(t, fe["rate_max"]) > 0 && atoi(t, fe["req_rate_max"]) > 0 && atoi(t, app["rate_max"]) > 0 &&
			app["lastsess"] != "" && app["lastsess"] != "-1" && r.row(t, "dead/BACKEND")["lastsess"] == "-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rates after traffic: fe %v app %v", fe, app)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
