package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// TestDifferentialHealthChecks runs edgeproxy and HAProxy 2.6 with the same
// HTTP health check (`option httpchk GET /health`) on four servers, sends
// no traffic, and compares how both report the checks: a server that
// answers 200, one that answers 503, one where nothing listens, and one
// with checks turned off (`no-check`). The failing ones fail for another
// second after going DOWN, which chkfail must leave out.
func TestDifferentialHealthChecks(t *testing.T) {
	hap := requireHAProxy(t)
	good := startStatusServer(t, "good", http.StatusOK)
	bad := startStatusServer(t, "bad", http.StatusServiceUnavailable)
	dead := startStatusServer(t, "dead", http.StatusOK)
	dead.stop()
	off := startStatusServer(t, "off", http.StatusOK)
	svcs := []service{
		{b: good, miscStr: "inter 300ms"},
		{b: bad, miscStr: "inter 300ms"},
		{b: dead, miscStr: "inter 300ms"},
		{b: off, miscStr: "no-check"},
	}
	checkLine := "option httpchk GET /health"

	ePort, eStats := freePort(t), freePort(t)
	pool, feName := poolConfigWith(t, ePort, eStats, "", svcs, []string{checkLine})
	startEdgeproxy(t, pool, eStats)
	hPort, hStats := freePort(t), freePort(t)
	startHAProxy(t, hap, haproxyPool{frontendName: feName, port: hPort, statsPort: hStats,
		services: svcs, backendLines: []string{checkLine}})
	proxies := []*proxyUnderTest{
		{name: "edgeproxy", stats: fmt.Sprintf("127.0.0.1:%d", eStats)},
		{name: "haproxy", stats: fmt.Sprintf("127.0.0.1:%d", hStats)},
	}
	for _, p := range proxies {
		eventually(t, 10*time.Second, p.name+" checks every server", func() bool {
			c := p.csv(t)
			return c.row(t, "customer-backend", good.serverName())["status"] == "UP" &&
				c.row(t, "customer-backend", bad.serverName())["status"] == "DOWN" &&
				c.row(t, "customer-backend", dead.serverName())["status"] == "DOWN"
		})
	}
	time.Sleep(time.Second) // three more failed checks of bad and dead

	e, h := proxies[0].csv(t), proxies[1].csvBetweenChecks(t)
	cols := []string{
		"status", "weight", "act", "chkfail", "chkdown", "downtime", "check_status", "check_code",
		"check_desc", "last_chk", "check_rise", "check_fall", "check_health",
	}
	for _, b := range []*backend{good, bad, dead, off} {
		er, hr := e.row(t, "customer-backend", b.serverName()), h.row(t, "customer-backend", b.serverName())
		for _, c := range cols {
			if er[c] != hr[c] && !(c == "downtime" && withinASecond(er[c], hr[c])) {
				t.Errorf("%s %s: %s is %q in edgeproxy, %q in haproxy", b.name, b.serverName(), c, er[c], hr[c])
			}
		}
	}
	be := "customer-backend"
	for i, c := range []*statsCSV{e, h} {
		name := proxies[i].name
		for sv, want := range map[string]map[string]string{
			good.serverName(): {"status": "UP", "check_status": "L7OK", "check_code": "200",
				"check_desc": "Layer7 check passed", "last_chk": "", "chkfail": "0"},
			bad.serverName(): {"status": "DOWN", "check_status": "L7STS", "check_code": "503",
				"check_desc": "Layer7 wrong status", "last_chk": "Service Unavailable", "chkfail": "1"},
			dead.serverName(): {"status": "DOWN", "check_status": "L4CON", "check_code": "",
				"check_desc": "Layer4 connection problem", "last_chk": "Connection refused", "chkfail": "1"},
			off.serverName(): {"status": "no check", "check_status": "", "check_desc": "", "chkfail": "",
				"chkdown": "", "downtime": ""},
			"BACKEND": {"status": "UP", "act": "2", "weight": "2"},
		} {
			r := c.row(t, be, sv)
			for col, v := range want {
				if r[col] != v {
					t.Errorf("%s: %s %s = %q, want %q", name, sv, col, r[col], v)
				}
			}
		}
	}

	em := parseProm(t, fetchOK(t, "http://"+proxies[0].stats+"/metrics"))
	// HAProxy's exporter once showed no check code for the failing server,
	// most likely while one of its checks was under way (its CSV marks
	// those with "* "): scrape until it shows the code.
	badCode := series{"haproxy_server_check_code", labels("proxy", be, "server", bad.serverName())}
	var hm *promScrape
	for range 50 {
		if hm = parseProm(t, fetchOK(t, "http://"+proxies[1].stats+"/metrics")); hm.values[badCode] == 503 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	compareMetrics(t, em, hm)
	for _, m := range []*promScrape{em, hm} {
		for s, want := range map[series]float64{
			{"haproxy_server_check_status", labels("proxy", be, "server", bad.serverName(), "state", "L7STS")}: 1,
			{"haproxy_server_check_status", labels("proxy", be, "server", good.serverName(), "state", "L7OK")}: 1,
			{"haproxy_server_check_code", labels("proxy", be, "server", bad.serverName())}:                     503,
			{"haproxy_server_check_code", labels("proxy", be, "server", dead.serverName())}:                    0,
			{"haproxy_server_status", labels("proxy", be, "server", off.serverName(), "state", "UP")}:          1,
			{"haproxy_backend_agg_server_status", labels("proxy", be, "state", "UP")}:                          2,
		} {
			if got, ok := m.values[s]; !ok || got != want {
				t.Errorf("%s = %v (present %v), want %v", s, got, ok, want)
			}
		}
		if v, ok := m.values[series{"haproxy_server_check_code", labels("proxy", be, "server", off.serverName())}]; ok {
			t.Errorf("check_code of the server without checks is exported: %v", v)
		}
	}
}

// startStatusServer serves every request with the given status on a free
// loopback port, closing each connection.
func startStatusServer(t testing.TB, name string, code int) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			w.Header().Set("Content-Length", strconv.Itoa(0))
			w.WriteHeader(code)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go b.srv.Serve(ln)
	t.Cleanup(b.stop)
	return b
}

// withinASecond compares two whole-second durations read from two processes
// a moment apart: their clocks tick independently, so 1 and 2 can both be
// right.
func withinASecond(a, b string) bool {
	x, errA := strconv.Atoi(a)
	y, errB := strconv.Atoi(b)
	return errA == nil && errB == nil && x-y <= 1 && y-x <= 1
}
