package discovery_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/discovery"
	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
)

// TestMain fails the run when goroutines of this package, its fake or
// net/http connections outlive the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if leaks := waitNoLeaks(3 * time.Second); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "leaked goroutines:\n%s\n", strings.Join(leaks, "\n\n"))
		code = 1
	}
	os.Exit(code)
}

func interestingGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "interestingGoroutines") {
			continue
		}
		// Frames of the non-test packages ("discovery." not "discovery_test.").
		if strings.Contains(g, "edgeproxy/discovery.") || strings.Contains(g, "edgeproxy/discovery/marathontest.") ||
			strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "net/http.(*conn).serve") {
			out = append(out, g)
		}
	}
	return out
}

func waitNoLeaks(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		leaks := interestingGoroutines()
		if len(leaks) == 0 || time.Now().After(deadline) {
			return leaks
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// leakCheck fails t if goroutines are left once its other cleanups ran; call
// it first so that its cleanup runs last.
func leakCheck(t *testing.T) {
	t.Cleanup(func() {
		if leaks := waitNoLeaks(3 * time.Second); len(leaks) > 0 {
			t.Errorf("leaked goroutines:\n%s", strings.Join(leaks, "\n\n"))
		}
	})
}

func startFake(t *testing.T, opts marathontest.Options) *marathontest.Server {
	t.Helper()
	srv := marathontest.New(opts)
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func newClient(t *testing.T, opts discovery.ClientOptions) *discovery.Client {
	t.Helper()
	c, err := discovery.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// logBuf collects log lines.
type logBuf struct {
	mu    sync.Mutex
	lines []string
}

func (l *logBuf) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logBuf) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// recorder records every set a watch delivers.
type recorder struct {
	mu     sync.Mutex
	sets   [][]discovery.Endpoint
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) fn(eps []discovery.Endpoint) {
	r.mu.Lock()
	r.sets = append(r.sets, eps)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sets)
}

func (r *recorder) last() []discovery.Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return r.sets[len(r.sets)-1]
}

func (r *recorder) all() [][]discovery.Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sets)
}

// waitSet waits until the latest delivered set satisfies cond.
func (r *recorder) waitSet(t *testing.T, what string, cond func([]discovery.Endpoint) bool) []discovery.Endpoint {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		var last []discovery.Endpoint
		ok := len(r.sets) > 0
		if ok {
			last = r.sets[len(r.sets)-1]
			ok = cond(last)
		}
		r.mu.Unlock()
		if ok {
			return last
		}
		select {
		case <-r.notify:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; last set %v", what, last)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool, onFail ...func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range onFail {
				f()
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runWatcher runs w until the test ends and checks that Run returns.
func runWatcher(t *testing.T, w *discovery.Watcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

func waitSynced(t *testing.T, w *discovery.Watcher) {
	t.Helper()
	select {
	case <-w.Synced():
	case <-time.After(10 * time.Second):
		t.Fatalf("not synced: %+v", w.Status())
	}
}

func waitConnected(t *testing.T, w *discovery.Watcher) {
	t.Helper()
	waitFor(t, "event stream", func() bool { return w.Status().Connected })
}

// fastWatcher are options that keep tests quick.
func fastWatcher(logs *logBuf, clk *clock) discovery.WatcherOptions {
	o := discovery.WatcherOptions{
		Debounce:   5 * time.Millisecond,
		MaxDelay:   50 * time.Millisecond,
		BackoffMin: 10 * time.Millisecond,
		BackoffMax: 50 * time.Millisecond,
	}
	if logs != nil {
		o.Logf = logs.Logf
	}
	if clk != nil {
		o.Now = clk.Now
	}
	return o
}

// appRequests counts the /v2/apps fetches a fake received.
func appRequests(srv *marathontest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Path == "/v2/apps" && r.Method == "GET" {
			n++
		}
	}
	return n
}

// refusedURL is a loopback URL where nothing listens.
func refusedURL(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func seedApp(t *testing.T, instances int) marathontest.AppDefinition {
	t.Helper()
	b, err := os.ReadFile("marathontest/testdata/customer.json")
	if err != nil {
		t.Fatal(err)
	}
	def, err := marathontest.ParseAppDefinition(b)
	if err != nil {
		t.Fatal(err)
	}
	def.Instances = &instances
	return def
}
