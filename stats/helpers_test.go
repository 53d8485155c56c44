package stats

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/proxy"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// startHTTPServer serves h on a free loopback port and returns its address.
func startHTTPServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// statusBackend answers /status/NNN with status NNN, anything else with
// 200, always with the 4-byte body "body" after reading the request body.
func statusBackend(t *testing.T) string {
	return startHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		code := http.StatusOK
		if rest, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
			code, _ = strconv.Atoi(rest)
		}
		w.Header().Set("Content-Length", "4")
		w.WriteHeader(code)
		io.WriteString(w, "body")
	}))
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func newBackend(name string, specs ...proxy.ServerSpec) *proxy.Backend {
	b := proxy.NewBackend(name, proxy.BackendOptions{Retries: 3, Redispatch: true})
	b.SetServers(specs)
	return b
}

func spec(name, addr string) proxy.ServerSpec {
	return proxy.ServerSpec{Name: name, Addr: addr, Weight: 1}
}

// startFrontend serves cfg on a free loopback port and returns its address.
func startFrontend(t *testing.T, cfg proxy.FrontendConfig) (*proxy.Frontend, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := proxy.NewFrontend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); f.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.Shutdown(ctx)
		<-done
	})
	return f, ln.Addr().String()
}

// startStats serves a stats Server on a free loopback port and returns it
// with its base URL.
func startStats(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(opts)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve returned %v after shutdown", err)
		}
	})
	return s, "http://" + ln.Addr().String()
}

// fetch GETs url and returns the response and its body.
func fetch(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp, string(b)
}

// csvReport is a parsed CSV export: the header and the rows by
// "pxname/svname".
type csvReport struct {
	header []string
	order  []string
	rows   map[string]map[string]string
}

func parseCSV(t *testing.T, body string) csvReport {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, body)
	}
	if len(recs) == 0 {
		t.Fatal("empty CSV")
	}
	rep := csvReport{header: recs[0], rows: map[string]map[string]string{}}
	names := append([]string{strings.TrimPrefix(recs[0][0], "# ")}, recs[0][1:]...)
	for _, rec := range recs[1:] {
		m := make(map[string]string, len(rec))
		for i, v := range rec {
			m[names[i]] = v
		}
		k := rec[0] + "/" + rec[1]
		if _, dup := rep.rows[k]; dup {
			t.Fatalf("duplicate CSV row %s", k)
		}
		rep.rows[k] = m
		rep.order = append(rep.order, k)
	}
	return rep
}

func (r csvReport) row(t *testing.T, key string) map[string]string {
	t.Helper()
	m, ok := r.rows[key]
	if !ok {
		t.Fatalf("no CSV row %s; rows: %v", key, r.order)
	}
	return m
}

// metricFamilies parses a Prometheus text exposition.
func metricFamilies(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	return mfs
}

// sample finds the value of the metric with exactly these labels; ok is
// false when there is none.
func sample(mfs map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		for _, lp := range m.Label {
			if labels[lp.GetName()] != lp.GetValue() {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// logRecorder collects Logf lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (l *logRecorder) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}
