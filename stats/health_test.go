package stats

import (
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
)

// Options.ServerHealth fills the state and the check columns.
func TestServerHealthHook(t *testing.T) {
	b := newBackend("be", spec("up", "127.0.0.1:1"), spec("drain", "127.0.0.1:2"),
		spec("down", "127.0.0.1:3"), spec("forced", "127.0.0.1:4"), spec("plain", "127.0.0.1:5"),
		spec("nocheck", "127.0.0.1:6"), spec("ini", "127.0.0.1:7"))
	b.Servers()[3].SetDown(true) // the proxy's own flag wins over a check that says UP
	changed := time.Now().Add(-90 * time.Second)
	reports := map[string]ServerHealth{
		"up": {State: "UP", Checked: true, CheckStatus: "L7OK", CheckCode: 200,
			CheckDuration: 3 * time.Millisecond, CheckDesc: "Layer7 check passed",
			Rise: 2, Fall: 3, Health: 4, CheckFailures: 2, Downs: 1,
			LastChange: changed, Downtime: 12 * time.Second},
		"drain": {State: "DRAIN", Checked: true, CheckStatus: "L4OK", Rise: 2, Fall: 3, Health: 4},
		"down": {State: "DOWN", Checked: true, CheckStatus: "L4CON", CheckDesc: "Layer4 connection problem",
			CheckDetail: "Connection refused", Rise: 2, Fall: 3, CheckFailures: 3, Downs: 1},
		"forced":  {State: "UP"},
		"nocheck": {State: "UP", LastChange: changed, Downs: 2, Downtime: time.Second},
		"ini":     {State: "UP", Checked: true, CheckStatus: "INI", CheckDesc: "Initializing", Rise: 2, Fall: 3, Health: 2},
	}
	_, url := startStats(t, Options{
		Backends: func() []*proxy.Backend { return []*proxy.Backend{b} },
		ServerHealth: func(s *proxy.Server) (ServerHealth, bool) {
			h, ok := reports[s.Name]
			return h, ok
		},
	})

	_, body := fetch(t, nil, url+"/haproxy?stats;csv")
	rep := parseCSV(t, body)
	tests := []struct {
		row  string
		want map[string]string
	}{
		{"be/up", map[string]string{"status": "UP", "check_status": "L7OK", "check_code": "200",
			"check_duration": "3", "check_desc": "Layer7 check passed", "last_chk": "", "check_rise": "2", "check_fall": "3",
			"check_health": "4", "chkfail": "2", "chkdown": "1", "downtime": "12"}},
		{"be/drain", map[string]string{"status": "DRAIN", "check_status": "L4OK", "check_code": "", "chkdown": "0"}},
		{"be/down", map[string]string{"status": "DOWN", "check_status": "L4CON", "check_health": "0", "chkfail": "3",
			"check_desc": "Layer4 connection problem", "last_chk": "Connection refused"}},
		// Without active checks HAProxy shows "no check", lastchg, and
		// no check counters.
		{"be/forced", map[string]string{"status": "DOWN", "check_status": "", "chkfail": "", "chkdown": "", "downtime": ""}},
		{"be/nocheck", map[string]string{"status": "no check", "check_status": "", "check_desc": "", "chkfail": "",
			"chkdown": "", "downtime": "", "check_rise": "", "weight": "1"}},
		{"be/ini", map[string]string{"status": "UP", "check_status": "INI", "check_desc": "Initializing",
			"check_duration": "", "check_code": "", "chkfail": "0", "check_health": "2"}},
		// Not reported at all: no health checking known.
		{"be/plain", map[string]string{"status": "UP", "check_status": "", "chkfail": "", "chkdown": "", "lastchg": "", "downtime": ""}},
		{"be/BACKEND", map[string]string{"status": "UP", "act": "4", "weight": "4"}}, // up, nocheck, ini, plain
	}
	for _, tt := range tests {
		got := rep.row(t, tt.row)
		for col, want := range tt.want {
			if got[col] != want {
				t.Errorf("%s %s = %q, want %q", tt.row, col, got[col], want)
			}
		}
	}
	for _, sv := range []string{"be/up", "be/nocheck"} {
		if lc := atoi(t, rep.row(t, sv)["lastchg"]); lc < 90 || lc > 95 {
			t.Errorf("%s lastchg = %d, want about 90", sv, lc)
		}
	}
	// ";up" keeps the server without checks, which takes traffic.
	_, body = fetch(t, nil, url+"/haproxy?stats;csv;up")
	if up := parseCSV(t, body); up.rows["be/nocheck"] == nil || up.rows["be/down"] != nil {
		t.Errorf(";up shows %v, want nocheck and not down", up.order)
	}

	_, body = fetch(t, nil, url+"/metrics")
	mfs := metricFamilies(t, body)
	up := map[string]string{"proxy": "be", "server": "up"}
	for name, want := range map[string]float64{
		"haproxy_server_check_failures_total":   2,
		"haproxy_server_check_up_down_total":    1,
		"haproxy_server_downtime_seconds_total": 12,
		"haproxy_server_check_code":             200,
		"haproxy_server_check_duration_seconds": 0.003,
	} {
		if got, ok := sample(mfs, name, up); !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	// check_status: one series per HAProxy check status, 1 for the
	// server's; all 0 before the first check; none without checks. The
	// check code is 0 for a check without an HTTP status.
	srv := func(name string) map[string]string { return map[string]string{"proxy": "be", "server": name} }
	for server, status := range map[string]string{"up": "L7OK", "drain": "L4OK", "down": "L4CON", "ini": ""} {
		for _, st := range checkStatuses {
			l := srv(server)
			l["state"] = st
			if got, ok := sample(mfs, "haproxy_server_check_status", l); !ok || got != oneIf(st == status) {
				t.Errorf("check_status%v = %v (present %v), want %v", l, got, ok, oneIf(st == status))
			}
		}
	}
	if n := len(mfs["haproxy_server_check_status"].GetMetric()); n != 4*16 {
		t.Errorf("%d check_status series, want 16 for each of the 4 checked servers", n)
	}
	for server, want := range map[string]float64{"down": 0, "ini": 0, "drain": 0} {
		if got, ok := sample(mfs, "haproxy_server_check_code", srv(server)); !ok || got != want {
			t.Errorf("check_code of %s = %v (present %v), want %v", server, got, ok, want)
		}
	}
	for _, name := range []string{"haproxy_server_check_code", "haproxy_server_check_failures_total", "haproxy_server_downtime_seconds_total"} {
		if got, ok := sample(mfs, name, srv("nocheck")); ok {
			t.Errorf("%s of the server without checks = %v, want none", name, got)
		}
	}
	if got, ok := sample(mfs, "haproxy_server_check_duration_seconds", srv("ini")); ok {
		t.Errorf("check_duration_seconds before the first check = %v, want none", got)
	}
	if got, _ := sample(mfs, "haproxy_server_status", map[string]string{"proxy": "be", "server": "nocheck", "state": "UP"}); got != 1 {
		t.Error("nocheck is not UP in /metrics")
	}
	for state, want := range map[string]float64{"UP": 4, "DRAIN": 1, "DOWN": 2, "MAINT": 0, "NOLB": 0} {
		if got, _ := sample(mfs, "haproxy_backend_agg_server_status", map[string]string{"proxy": "be", "state": state}); got != want {
			t.Errorf("agg_server_status %s = %v, want %v", state, got, want)
		}
	}
	if got, _ := sample(mfs, "haproxy_server_status", map[string]string{"proxy": "be", "server": "drain", "state": "DRAIN"}); got != 1 {
		t.Error("drain is not DRAIN in /metrics")
	}

	_, body = fetch(t, nil, url+"/haproxy?stats")
	for _, want := range []string{`title="Layer7 check passed">L7OK 200 in 3 ms</td>`, "<td>12s</td>",
		`<td class="st drain">DRAIN</td>`, `title="Layer4 connection problem: Connection refused">L4CON in 0 ms</td>`,
		`<td class="st up">no check</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
