package stats

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHealthAndAdminEndpoints(t *testing.T) {
	var ready atomic.Bool
	var log logRecorder
	cfgErr := atomic.Bool{}
	_, url := startStats(t, Options{
		Ready: ready.Load,
		Config: func() ([]byte, error) {
			if cfgErr.Load() {
				return nil, errors.New("render failed")
			}
			return []byte(`{"name":"pool-1"}`), nil
		},
		Logf: log.logf,
	})
	type want struct {
		status int
		body   string
		ctype  string
	}
	check := func(path string, w want) {
		t.Helper()
		resp, body := fetch(t, nil, url+path)
		if resp.StatusCode != w.status || (w.body != "" && body != w.body) {
			t.Errorf("GET %s = %d %q, want %d %q", path, resp.StatusCode, body, w.status, w.body)
		}
		if w.ctype != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), w.ctype) {
			t.Errorf("GET %s content type %q, want %s", path, resp.Header.Get("Content-Type"), w.ctype)
		}
	}
	notReady := want{503, "503 Service Unavailable\n", "text/plain"}
	ok := want{200, "OK\n", "text/plain"}

	// Not ready before the first sync...
	check("/_haproxy_health_check", notReady)
	check("/readyz", notReady)
	check("/healthz", ok)
	// ...ready after it...
	ready.Store(true)
	check("/_haproxy_health_check", ok)
	check("/readyz", ok)
	// ...and not ready again while draining, though the process serves.
	ready.Store(false)
	check("/_haproxy_health_check", notReady)
	check("/healthz", ok)

	check("/_haproxy_getpids", want{200, strconv.Itoa(os.Getpid()) + "\n", "text/plain"})
	check("/_haproxy_getconfig", want{200, `{"name":"pool-1"}`, "application/json"})
	cfgErr.Store(true)
	check("/_haproxy_getconfig", want{500, "500 Internal Server Error\n", "text/plain"})
	if !log.contains("render failed") {
		t.Errorf("config error not logged: %v", log.lines)
	}

	check("/haproxy", want{status: 404})
	check("/haproxy?foo", want{status: 404})
	check("/nothing", want{status: 404})
	resp, err := http.Post(url+"/haproxy?stats", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST stats page: %d, want 405", resp.StatusCode)
	}
	// HEAD works where GET does (load balancers probe with either).
	resp, err = http.Head(url + "/_haproxy_health_check")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Errorf("HEAD health check: %d, want 503", resp.StatusCode)
	}
}

// Without Ready and Config the listener is always ready and has no config
// to show.
func TestDefaults(t *testing.T) {
	_, url := startStats(t, Options{})
	if resp, _ := fetch(t, nil, url+"/_haproxy_health_check"); resp.StatusCode != 200 {
		t.Errorf("health check without Ready: %d", resp.StatusCode)
	}
	if resp, _ := fetch(t, nil, url+"/_haproxy_getconfig"); resp.StatusCode != 404 {
		t.Errorf("getconfig without Config: %d", resp.StatusCode)
	}
	resp, body := fetch(t, nil, url+"/haproxy?stats;csv")
	rep := parseCSV(t, body)
	if resp.StatusCode != 200 || len(rep.order) != 2 {
		t.Errorf("CSV without proxies: %d, rows %v", resp.StatusCode, rep.order)
	}
}

func TestShutdownBeforeServe(t *testing.T) {
	s := New(Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve after Shutdown did not return")
	}
}

// Shutdown waits for a request in flight, then stops the listener.
func TestShutdownLetsRequestsFinish(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	s := New(Options{
		Config: func() ([]byte, error) {
			close(entered)
			<-release
			return []byte("{}"), nil
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	type result struct {
		code int
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/_haproxy_getconfig")
		if err != nil {
			got <- result{err: err}
			return
		}
		resp.Body.Close()
		got <- result{code: resp.StatusCode}
	}()
	<-entered
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// The sampler is gone once Shutdown returns.
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "(*Server).startSampler") {
		t.Error("the sampler outlived Shutdown")
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if r := <-got; r.err != nil || r.code != 200 {
		t.Fatalf("request in flight: %d %v", r.code, r.err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Fatal("listener still accepts after Shutdown")
	}
}
