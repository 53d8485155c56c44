//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// parkedConns reads edgeproxy_frontend_parked_connections from /metrics.
func parkedConns(t *testing.T, statsPort int) float64 {
	body := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", statsPort))
	v, ok := metricWith(body, "edgeproxy_frontend_parked_connections", "")
	if !ok {
		t.Fatalf("no edgeproxy_frontend_parked_connections in /metrics")
	}
	return v
}

// TestParkIdleAfter runs the seed pool with --park-idle-after: an idle
// keep-alive connection is parked (and shown in /metrics), and its next
// request is served as if nothing happened; with 0 nothing is parked.
func TestParkIdleAfter(t *testing.T) {
	addrs := addrsOf(startCustomers(t, 2, nil))
	for _, tc := range []struct {
		flag string
		want float64
	}{{"50ms", 1}, {"0", 0}} {
		t.Run(tc.flag, func(t *testing.T) {
			_, addr, statsPort := runSeed(t, addrs, "--park-idle-after", tc.flag)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			for i := range 3 {
				if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: customer\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(body), "Customer Application") {
					t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
				}
				time.Sleep(300 * time.Millisecond)
				if got := parkedConns(t, statsPort); got != tc.want {
					t.Fatalf("after request %d and 300ms idle: %v parked connections, want %v", i, got, tc.want)
				}
			}
		})
	}
}
