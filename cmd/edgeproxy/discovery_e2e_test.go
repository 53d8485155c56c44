package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
)

// taskServer is a local server standing in for one task's nginx.
type taskServer struct {
	addr  string
	srv   *http.Server
	first atomic.Int64 // unix ns of the first request, 0 before
}

func startTaskServers(t testing.TB, n int) []*taskServer {
	var out []*taskServer
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ts := &taskServer{addr: ln.Addr().String()}
		ts.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ts.first.CompareAndSwap(0, time.Now().UnixNano())
			w.Header().Set("X-Task", ts.addr)
			io.WriteString(w, "Customer Application")
		})}
		go ts.srv.Serve(ln)
		t.Cleanup(func() { ts.srv.Close() })
		out = append(out, ts)
	}
	return out
}

// startSeedMarathon starts a fake Marathon holding the seed's /customer app,
// whose tasks take the addresses of n local task servers as they launch.
func startSeedMarathon(tb testing.TB, n int) (*marathontest.Server, map[string]*taskServer) {
	tb.Helper()
	byAddr := map[string]*taskServer{}
	var addrs []string
	for _, s := range startTaskServers(tb, n) {
		addrs = append(addrs, s.addr)
		byAddr[s.addr] = s
	}
	m := marathontest.New(marathontest.Options{})
	if err := m.Start("127.0.0.1:0"); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Close)
	app, err := marathontest.ParseAppDefinition(seedApp)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.AddApp(app, addrs); err != nil {
		tb.Fatal(err)
	}
	return m, byAddr
}

// seedWithPorts is the seed pool unchanged but for free listener ports.
func seedWithPorts(t testing.TB) (path string, port, statsPort int) {
	var pool map[string]any
	if err := json.Unmarshal(seedPool, &pool); err != nil {
		t.Fatal(err)
	}
	port, statsPort = freePort(t), freePort(t)
	h := pool["haproxy"].(map[string]any)
	h["frontends"].([]any)[0].(map[string]any)["bindPort"] = port
	h["stats"].(map[string]any)["bindPort"] = statsPort
	out, _ := json.Marshal(pool)
	path = filepath.Join(t.TempDir(), "pool.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, port, statsPort
}

// load sends GETs over keep-alive connections until stopped and counts
// what each task served and every failure.
type load struct {
	mu       sync.Mutex
	served   map[string]int
	failures []string
	total    atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startLoad(t *testing.T, url string, clients int) *load {
	l := &load{served: map[string]int{}, stop: make(chan struct{})}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for i := 0; i < 200000; i++ { // bounded
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := c.Get(url)
				l.total.Add(1)
				if err != nil {
					l.fail(err.Error())
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.fail(fmt.Sprintf("status %d", resp.StatusCode))
					continue
				}
				l.mu.Lock()
				l.served[resp.Header.Get("X-Task")]++
				l.mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func (l *load) fail(s string) {
	l.mu.Lock()
	l.failures = append(l.failures, s)
	l.mu.Unlock()
}

func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// servedSince snapshots the per-task counts.
func (l *load) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]int, len(l.served))
	for k, v := range l.served {
		m[k] = v
	}
	return m
}

// waitServing waits until exactly the tasks Marathon runs receive traffic.
func waitServing(t *testing.T, l *load, m *marathontest.Server, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		want := map[string]bool{}
		for _, ti := range m.Tasks("/customer") {
			if ti.State == "TASK_RUNNING" {
				want[net.JoinHostPort(ti.Host, strconv.Itoa(ti.Ports[0]))] = true
			}
		}
		before := l.counts()
		time.Sleep(300 * time.Millisecond)
		after := l.counts()
		got := map[string]bool{}
		for k, v := range after {
			if v > before[k] {
				got[k] = true
			}
		}
		if equalSets(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: traffic reaches %v, Marathon runs %v", what, keys(got), keys(want))
		}
	}
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestMarathonScalingUnderLoad is the seed scenario under steady load:
// /customer scales 4 -> 8 -> 2 -> 4, a task is killed (and its server
// stopped), Marathon itself goes away and comes back. No request fails and
// new tasks get traffic soon after their event.
func TestMarathonScalingUnderLoad(t *testing.T) {
	m, byAddr := startSeedMarathon(t, 12)
	cfg, port, _ := seedWithPorts(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1", "--marathon", m.URL())
	l := startLoad(t, "http://"+addr+"/", 4)
	waitServing(t, l, m, "start (4 tasks)")

	var latencies []time.Duration
	for _, n := range []int{8, 2, 4} {
		before := map[string]bool{}
		for _, ti := range m.Tasks("/customer") {
			before[net.JoinHostPort(ti.Host, strconv.Itoa(ti.Ports[0]))] = true
		}
		start := time.Now()
		if _, err := m.Scale("/customer", n); err != nil {
			t.Fatal(err)
		}
		waitServing(t, l, m, fmt.Sprintf("scale to %d", n))
		for _, ti := range m.Tasks("/customer") {
			a := net.JoinHostPort(ti.Host, strconv.Itoa(ti.Ports[0]))
			if !before[a] {
				if f := byAddr[a].first.Load(); f > 0 && f >= start.UnixNano() {
					latencies = append(latencies, time.Duration(f-start.UnixNano()))
				}
			}
		}
	}
	// A task dies: Marathon kills it and its server goes away gracefully.
	victim := m.Tasks("/customer")[0]
	va := net.JoinHostPort(victim.Host, strconv.Itoa(victim.Ports[0]))
	if err := m.KillTask("/customer", victim.ID, false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	byAddr[va].srv.Shutdown(ctx)
	cancel()
	waitServing(t, l, m, "task killed and replaced")

	// Marathon goes away: traffic keeps flowing to the last known tasks.
	m.Stop()
	before := l.total.Load()
	time.Sleep(time.Second)
	if l.total.Load()-before < 20 {
		t.Fatalf("traffic stalled while Marathon was down")
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Scale("/customer", 5); err != nil {
		t.Fatal(err)
	}
	waitServing(t, l, m, "converged after Marathon came back")
	l.end()
	if len(l.failures) > 0 {
		t.Fatalf("%d of %d requests failed, e.g. %v", len(l.failures), l.total.Load(), l.failures[:min(5, len(l.failures))])
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	if len(latencies) == 0 {
		t.Fatal("no new task got traffic")
	}
	t.Logf("%d requests, 0 failed; scale event to first request on a new task: min %v, max %v over %d tasks",
		l.total.Load(), latencies[0], latencies[len(latencies)-1], len(latencies))
	if latencies[len(latencies)-1] > time.Second {
		t.Errorf("a new task waited %v for its first request", latencies[len(latencies)-1])
	}
}

// BenchmarkScaleEventToFirstRequest measures, through the real binary under
// steady load, the time from a Marathon scale-up to the first request the
// new task serves. Run: go test -run '^$' -bench ScaleEvent -benchtime 50x ./cmd/edgeproxy
func BenchmarkScaleEventToFirstRequest(b *testing.B) {
	m, byAddr := startSeedMarathon(b, 8)
	cfgPath, port, _ := seedWithPorts(b)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProxy(b, addr, "run", "--config", cfgPath, "--bind-address", "127.0.0.1", "--marathon", m.URL(), "--access-log", "off")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if resp, err := c.Get("http://" + addr + "/"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				time.Sleep(500 * time.Microsecond)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	var lat []time.Duration
	for b.Loop() {
		before := map[string]bool{}
		for _, ti := range m.Tasks("/customer") {
			before[net.JoinHostPort(ti.Host, strconv.Itoa(ti.Ports[0]))] = true
		}
		for _, s := range byAddr {
			s.first.Store(0)
		}
		start := time.Now()
		if _, err := m.Scale("/customer", 5); err != nil {
			b.Fatal(err)
		}
		var fresh *taskServer
		for fresh == nil && time.Since(start) < 5*time.Second {
			for _, ti := range m.Tasks("/customer") {
				a := net.JoinHostPort(ti.Host, strconv.Itoa(ti.Ports[0]))
				if !before[a] && ti.State == "TASK_RUNNING" {
					fresh = byAddr[a]
				}
			}
		}
		for fresh != nil && fresh.first.Load() == 0 && time.Since(start) < 5*time.Second {
			time.Sleep(200 * time.Microsecond)
		}
		if fresh == nil || fresh.first.Load() == 0 {
			b.Fatal("new task got no request within 5s")
		}
		lat = append(lat, time.Duration(fresh.first.Load()-start.UnixNano()))
		if _, err := m.Scale("/customer", 4); err != nil {
			b.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
