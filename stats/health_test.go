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
		spec("down", "127.0.0.1:3"), spec("forced", "127.0.0.1:4"), spec("plain", "127.0.0.1:5"))
	b.Servers()[3].SetDown(true) // the proxy's own flag wins over a check that says UP
	changed := time.Now().Add(-90 * time.Second)
	reports := map[string]ServerHealth{
		"up": {State: "UP", Checked: true, CheckStatus: "L7OK", CheckCode: 200,
			CheckDuration: 3 * time.Millisecond, CheckDesc: "Layer7 check passed",
			Rise: 2, Fall: 3, Health: 4, CheckFailures: 2, Downs: 1,
			LastChange: changed, Downtime: 12 * time.Second},
		"drain":  {State: "DRAIN", Checked: true, CheckStatus: "L4OK", Rise: 2, Fall: 3, Health: 4},
		"down":   {State: "DOWN", Checked: true, CheckStatus: "L4CON", CheckDesc: "connection refused", Rise: 2, Fall: 3, CheckFailures: 3, Downs: 1},
		"forced": {State: "UP"},
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
			"check_duration": "3", "check_desc": "Layer7 check passed", "check_rise": "2", "check_fall": "3",
			"check_health": "4", "chkfail": "2", "chkdown": "1", "downtime": "12"}},
		{"be/drain", map[string]string{"status": "DRAIN", "check_status": "L4OK", "check_code": "", "chkdown": "0"}},
		{"be/down", map[string]string{"status": "DOWN", "check_status": "L4CON", "check_health": "0", "chkfail": "3"}},
		{"be/forced", map[string]string{"status": "DOWN", "check_status": "", "chkfail": "", "chkdown": "0"}},
		{"be/plain", map[string]string{"status": "UP", "check_status": "", "chkfail": "", "chkdown": "", "lastchg": "", "downtime": ""}},
		{"be/BACKEND", map[string]string{"status": "UP", "act": "2", "weight": "2"}}, // up and plain
	}
	for _, tt := range tests {
		got := rep.row(t, tt.row)
		for col, want := range tt.want {
			if got[col] != want {
				t.Errorf("%s %s = %q, want %q", tt.row, col, got[col], want)
			}
		}
	}
	if lc := atoi(t, rep.row(t, "be/up")["lastchg"]); lc < 90 || lc > 95 {
		t.Errorf("lastchg = %d, want about 90", lc)
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
	for state, want := range map[string]float64{"UP": 2, "DRAIN": 1, "DOWN": 2, "MAINT": 0, "NOLB": 0} {
		if got, _ := sample(mfs, "haproxy_backend_agg_server_status", map[string]string{"proxy": "be", "state": state}); got != want {
			t.Errorf("agg_server_status %s = %v, want %v", state, got, want)
		}
	}
	if got, _ := sample(mfs, "haproxy_server_status", map[string]string{"proxy": "be", "server": "drain", "state": "DRAIN"}); got != 1 {
		t.Error("drain is not DRAIN in /metrics")
	}

	_, body = fetch(t, nil, url+"/haproxy?stats")
	for _, want := range []string{`title="Layer7 check passed">L7OK 200 in 3 ms</td>`, "<td>12s</td>",
		`<td class="st drain">DRAIN</td>`, `title="connection refused">L4CON in 0 ms</td>`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
