package main

import (
	"os"
	"strings"
	"testing"
)

// TestHAProxyConfigMatchesPool checks that the HAProxy config made from the
// benchmark pool carries every setting edgeproxy applies to the same pool.
func TestHAProxyConfigMatchesPool(t *testing.T) {
	seed, err := os.ReadFile("../cmd/edgeproxy/seed/multi-lb-config.json")
	if err != nil {
		t.Fatal(err)
	}
	servers := []string{"127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003", "127.0.0.1:9004"}
	pool, err := poolJSON(seed, servers, 8080, 9090)
	if err != nil {
		t.Fatal(err)
	}
	for _, reuse := range []string{reuseSafe, reuseAlways} {
		cfg, err := haproxyConfig(pool, 2, reuse)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"nbthread 2",
			"http-reuse " + reuse,
			"option http-keep-alive",
			"retries 3",
			"option redispatch",
			"timeout connect 3s",
			"timeout client 30s",
			"timeout server 30s",
			"timeout http-request 15s",
			"timeout tunnel 3600s",
			"timeout queue 30s",
			"timeout http-keep-alive 65s",
			"default-server pool-purge-delay 10s",
			"bind 127.0.0.1:9090",
			"monitor-uri /_haproxy_health_check",
			"bind 127.0.0.1:8080",
			"maxconn 20000",
			"default_backend customer-backend",
			"balance roundrobin",
			"option forwardfor",
			"http-request set-header X-Forwarded-Port %[dst_port]",
			"server s1 127.0.0.1:9001 weight 1 check inter 2s rise 2 fall 3",
			"server s4 127.0.0.1:9004 weight 1 check inter 2s rise 2 fall 3",
		} {
			if !strings.Contains(cfg, want+"\n") {
				t.Errorf("reuse %s: config lacks %q:\n%s", reuse, want, cfg)
			}
		}
		if strings.Contains(cfg, "\n    log ") {
			t.Errorf("config logs:\n%s", cfg)
		}
	}
}

func TestEdgeproxyArgsCarryTheSameTimeouts(t *testing.T) {
	got := strings.Join(edgeproxyArgs("edgeproxy", "pool.json"), " ")
	for _, want := range []string{"--timeout-connect 3s", "--timeout-keep-alive 1m5s", "--timeout-backend-idle 10s", "--bind-address 127.0.0.1"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
}
