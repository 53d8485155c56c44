package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Helpers of the backend-health end-to-end tests (health_e2e_test.go): a
// backend that runs as a process of its own, a pool with health checks, a
// reader of the stats CSV and a keep-alive GET load.

// childBackendEnv makes the test binary, re-executed, serve HTTP on the
// address it names instead of running tests: a backend that the test can
// SIGKILL.
const childBackendEnv = "EDGEPROXY_TEST_BACKEND"

func init() {
	if addr := os.Getenv(childBackendEnv); addr != "" {
		os.Exit(runChildBackend(addr))
	}
}

// runChildBackend serves until its stdin closes (the test ended or died).
// It answers every path, /health included, with 200 and names itself in
// X-Task as "<addr> pid=<pid>", so a restarted process is told apart.
func runChildBackend(addr string) int {
	var ln net.Listener
	var err error
	for range 100 { // the port may be rebinding after a kill: retry for 2 s
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child backend:", err)
		return 1
	}
	id := fmt.Sprintf("%s pid=%d", ln.Addr(), os.Getpid())
	fmt.Printf("listening %s\n", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Task", id)
		io.WriteString(w, "Customer Application")
	}))
	return 1
}

// backendProc is one child backend process.
type backendProc struct {
	addr   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser // the child exits when it closes
	waited chan error
}

// startBackendProc starts a child backend on addr ("127.0.0.1:0" for a free
// port) and returns once it listens.
func startBackendProc(t *testing.T, addr string) *backendProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childBackendEnv+"="+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &backendProc{cmd: cmd, stdin: stdin, waited: make(chan error, 1)}
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		p.waited <- cmd.Wait()
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case l := <-line:
		a, ok := strings.CutPrefix(strings.TrimSpace(l), "listening ")
		if !ok {
			p.kill()
			t.Fatalf("child backend on %s did not start: %q %s", addr, l, stderr.String())
		}
		p.addr = a
	case <-time.After(10 * time.Second):
		p.kill()
		t.Fatalf("child backend on %s did not start", addr)
	}
	return p
}

// kill sends SIGKILL to this child (by its PID) and reaps it; it may be
// called again.
func (p *backendProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL) // an error only if already reaped
	err := <-p.waited
	p.waited <- err
}

// healthPool is the seed pool with one ADDRESS service per address, each
// with check.customStr set to check, and the backend's fields merged with
// backend (customCheck, miscStrs).
func healthPool(t *testing.T, addrs []string, check string, backend map[string]any) (path string, port, statsPort int) {
	t.Helper()
	path, port, statsPort = seedWithAddresses(t, addrs)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pool map[string]any
	if err := json.Unmarshal(raw, &pool); err != nil {
		t.Fatal(err)
	}
	be := pool["haproxy"].(map[string]any)["backends"].([]any)[0].(map[string]any)
	for _, s := range be["services"].([]any) {
		s.(map[string]any)["endpoint"].(map[string]any)["check"] = map[string]any{"customStr": check}
	}
	for k, v := range backend {
		be[k] = v
	}
	raw, _ = json.Marshal(pool)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, port, statsPort
}

// serverName is the stats name of an ADDRESS server, as Edge-LB names it.
func serverName(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	return "address_" + host + "_" + port
}

// statsRows reads the stats CSV and returns the rows of customer-backend by
// svname ("BACKEND" and each server), each as column name -> value.
func statsRows(t *testing.T, statsPort int) map[string]map[string]string {
	t.Helper()
	body := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/haproxy?stats;csv", statsPort))
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(body, "# ")))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("stats CSV: %v\n%s", err, body)
	}
	rows := map[string]map[string]string{}
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, name := range recs[0] {
			if i < len(rec) && name != "" {
				m[name] = rec[i]
			}
		}
		if m["pxname"] == "customer-backend" {
			rows[m["svname"]] = m
		}
	}
	return rows
}

// waitStats polls the stats CSV every 10 ms until cond holds and returns
// when it first did; it fails the test after timeout.
func waitStats(t *testing.T, statsPort int, timeout time.Duration, what string, cond func(map[string]map[string]string) bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rows := statsRows(t, statsPort)
		if cond(rows) {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; stats rows: %v", what, timeout, rows)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// allChecked holds once every server of addrs is UP with a passed check
// behind it (not merely CHECKING), so that a failure now takes fall checks.
func allChecked(addrs []string) func(map[string]map[string]string) bool {
	return func(rows map[string]map[string]string) bool {
		for _, a := range addrs {
			r := rows[serverName(a)]
			if r == nil || r["status"] != "UP" || (r["check_status"] != "L4OK" && r["check_status"] != "L7OK") {
				return false
			}
		}
		return true
	}
}

func statusIs(addr, status string) func(map[string]map[string]string) bool {
	return func(rows map[string]map[string]string) bool {
		r := rows[serverName(addr)]
		return r != nil && r["status"] == status
	}
}

// getLoad sends GETs over keep-alive connections from a few clients until
// stopped, and records who served each one (X-Task) and when first, every failure
// and the slowest request.
type getLoad struct {
	mu       sync.Mutex
	served   map[string]int
	first    map[string]time.Time
	failures []string
	slowest  time.Duration
	total    atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startGetLoad(t *testing.T, url string, clients int) *getLoad {
	l := &getLoad{served: map[string]int{}, first: map[string]time.Time{}, stop: make(chan struct{})}
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for range 20000 { // bounded: at most about a minute
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				resp, err := c.Get(url)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				took := time.Since(start)
				l.total.Add(1)
				l.mu.Lock()
				l.slowest = max(l.slowest, took)
				switch {
				case err != nil:
					l.failures = append(l.failures, err.Error())
				case resp.StatusCode != 200 || string(body) != "Customer Application":
					l.failures = append(l.failures, fmt.Sprintf("status %d %q", resp.StatusCode, body))
				default:
					who := resp.Header.Get("X-Task")
					now := time.Now()
					l.served[who]++
					if _, ok := l.first[who]; !ok {
						l.first[who] = now
					}
				}
				l.mu.Unlock()
				time.Sleep(3 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(l.end)
	return l
}

func (l *getLoad) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// servedBy returns how many requests X-Task values starting with prefix
// served.
func (l *getLoad) servedBy(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, v := range l.served {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// firstBy returns when X-Task who first served, if it did.
func (l *getLoad) firstBy(who string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.first[who]
	return at, ok
}

// checkNoFailures ends the load and fails the test if any request failed.
func (l *getLoad) checkNoFailures(t *testing.T) {
	t.Helper()
	l.end()
	if len(l.failures) > 0 {
		t.Fatalf("%d of %d GETs failed, e.g. %q", len(l.failures), l.total.Load(), l.failures[:min(5, len(l.failures))])
	}
}

// waitAllServe waits until each of addrs has served a request in the last
// 300 ms.
func waitAllServe(t *testing.T, l *getLoad, addrs []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		before := map[string]int{}
		for _, a := range addrs {
			before[a] = l.servedBy(a)
		}
		time.Sleep(300 * time.Millisecond)
		ok := true
		for _, a := range addrs {
			if l.servedBy(a) == before[a] {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every backend of %v gets traffic", addrs)
		}
	}
}

// modalBackend is an in-process backend whose behaviour the test switches:
// normal, hung (accepts and reads, never answers), or failing its health
// check path only.
type modalBackend struct {
	addr     string
	mode     atomic.Int32
	requests atomic.Int64 // requests other than health checks
	checks   atomic.Int64 // health check requests
	release  chan struct{}
	srv      *http.Server
}

const (
	modeNormal int32 = iota
	modeHang
	modeHealth500
)

func startModalBackends(t *testing.T, n int) []*modalBackend {
	var out []*modalBackend
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b := &modalBackend{addr: ln.Addr().String(), release: make(chan struct{})}
		b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			health := r.URL.Path == "/health"
			if health {
				b.checks.Add(1)
			} else {
				b.requests.Add(1)
			}
			switch b.mode.Load() {
			case modeHang:
				<-b.release
				return
			case modeHealth500:
				if health {
					http.Error(w, "unhealthy", http.StatusInternalServerError)
					return
				}
			}
			w.Header().Set("X-Task", b.addr)
			io.WriteString(w, "Customer Application")
		})}
		go b.srv.Serve(ln)
		t.Cleanup(func() {
			close(b.release)
			b.srv.Close()
		})
		out = append(out, b)
	}
	return out
}

func modalAddrs(bs []*modalBackend) []string {
	var a []string
	for _, b := range bs {
		a = append(a, b.addr)
	}
	return a
}
