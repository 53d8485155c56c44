package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// requireHAProxy checks that the haproxy on PATH is the reference the
// comparison is written against: 2.6.x, built with the prometheus-exporter
// service. It returns its path.
func requireHAProxy(t testing.TB) string {
	t.Helper()
	bin := requireProgram(t, "haproxy")
	out, _, err := runBounded(t, 10*time.Second, nil, bin, "-vv")
	if err != nil {
		t.Fatalf("haproxy -vv: %v\n%s; %s", err, out, installHint)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if !regexp.MustCompile(`^HAProxy version 2\.6\.\d+`).MatchString(first) {
		t.Fatalf("haproxy is %q, want 2.6.x (Debian 12's); %s", first, installHint)
	}
	if !regexp.MustCompile(`(?m)^Available services\s*:.*\bprometheus-exporter\b`).Match(out) {
		t.Fatalf("haproxy -vv lists no prometheus-exporter service:\n%s\n%s", out, installHint)
	}
	t.Logf("reference: %s", first)
	return bin
}

// haproxyPool is the HAProxy configuration equivalent to what edgeproxy
// runs for poolConfig: Edge-LB's defaults (retries 3, option redispatch,
// its timeouts with edgeproxy's 65 s keep-alive), a "listen stats" section
// with the stats page and the Prometheus exporter, one frontend with the
// name edgeproxy derives, and customer-backend with the servers named as
// edgeproxy names them.
type haproxyPool struct {
	frontendName string
	port         int
	statsPort    int
	hostEq       string    // route only this Host; "" routes everything
	services     []service // server options are the endpoints' miscStr
	backendLines []string  // more backend directives, as backends[].miscStrs
}

func (h haproxyPool) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
    nbthread 1
    maxconn 1000

defaults
    mode http
    retries 3
    option redispatch
    timeout connect 3s
    timeout client 30s
    timeout server 30s
    timeout tunnel 3600s
    timeout http-request 15s
    timeout queue 30s
    timeout http-keep-alive 65s

listen stats
    bind 127.0.0.1:%d
    stats enable
    stats uri /haproxy?stats
    http-request use-service prometheus-exporter if { path /metrics }

frontend %s
    bind 127.0.0.1:%d
`, h.statsPort, h.frontendName, h.port)
	if h.hostEq != "" {
		// How Edge-LB renders a hostEq rule.
		fmt.Fprintf(&b, "    use_backend customer-backend if { req.hdr(host) -i -m reg ^%s(:.*$)? }\n", h.hostEq)
	} else {
		b.WriteString("    default_backend customer-backend\n")
	}
	b.WriteString(`
backend customer-backend
    balance roundrobin
    option forwardfor
`)
	for _, l := range h.backendLines {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	for _, s := range h.services {
		// Edge-LB renders a bare "check" unless the endpoint turns it off.
		fmt.Fprintf(&b, "    server %s %s check %s\n", s.b.serverName(), s.b.addr, s.miscStr)
	}
	return b.String()
}

// startHAProxy checks the configuration, then runs HAProxy in the
// foreground until the test ends.
func startHAProxy(t testing.TB, bin string, h haproxyPool) *process {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(h.config()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := runBounded(t, 10*time.Second, nil, bin, "-c", "-f", cfg); err != nil {
		t.Fatalf("haproxy -c: %v\n%s%s\nconfig:\n%s", err, out, errOut, h.config())
	}
	// Only the stats port is probed: HAProxy counts a connection closed
	// without a request as a request error of the frontend (400).
	return startProcess(t, "haproxy", []string{bin, "-db", "-f", cfg}, fmt.Sprintf("127.0.0.1:%d", h.statsPort))
}
