package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgeproxy-e2e")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "edgeproxy")
	out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building edgeproxy: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// seedWithAddresses is the seed's multi-lb-config.json with its backend
// switched to static ADDRESS endpoints and free ports for the listeners.
func seedWithAddresses(t *testing.T, addrs []string) (path string, port, statsPort int) {
	t.Helper()
	raw, err := os.ReadFile("seed/multi-lb-config.json")
	if err != nil {
		t.Fatal(err)
	}
	var pool map[string]any
	if err := json.Unmarshal(raw, &pool); err != nil {
		t.Fatal(err)
	}
	port, statsPort = freePort(t), freePort(t)
	h := pool["haproxy"].(map[string]any)
	h["frontends"].([]any)[0].(map[string]any)["bindPort"] = port
	h["stats"].(map[string]any)["bindPort"] = statsPort
	var services []any
	for _, a := range addrs {
		host, p, _ := net.SplitHostPort(a)
		pn, _ := strconv.Atoi(p)
		services = append(services, map[string]any{"endpoint": map[string]any{"type": "ADDRESS", "address": host, "port": pn}})
	}
	h["backends"].([]any)[0].(map[string]any)["services"] = services
	out, _ := json.Marshal(pool)
	path = filepath.Join(t.TempDir(), "pool.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, port, statsPort
}

type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     *sync.Mutex
	waited chan error
}

// startProxy runs the binary and waits until addr accepts connections.
func startProxy(t testing.TB, addr string, args ...string) *proc {
	t.Helper()
	return startProxyEnv(t, addr, nil, args...) // nil: the test's environment
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// customerBackend serves the seed's "Customer Application" page and records
// the request headers it saw.
type customerBackend struct {
	name    string
	addr    string
	mu      sync.Mutex
	headers []http.Header
}

func startCustomers(t *testing.T, n int, handler func(name string) http.HandlerFunc) []*customerBackend {
	var out []*customerBackend
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b := &customerBackend{name: fmt.Sprintf("customer-%d", i), addr: ln.Addr().String()}
		var h http.HandlerFunc
		if handler != nil {
			h = handler(b.name)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.mu.Lock()
			b.headers = append(b.headers, r.Header.Clone())
			b.mu.Unlock()
			if h != nil {
				h(w, r)
				return
			}
			w.Header().Set("X-Served-By", b.name)
			fmt.Fprintf(w, "<html><body><h1>Customer Application</h1></body></html>\n")
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		out = append(out, b)
	}
	return out
}

func addrsOf(bs []*customerBackend) []string {
	var a []string
	for _, b := range bs {
		a = append(a, b.addr)
	}
	return a
}

// runSeed runs the seed pool on loopback with the customer servers at
// addrs and the extra run flags given; it returns the instance, the
// frontend's address and the stats port.
func runSeed(t *testing.T, addrs []string, flags ...string) (p *proc, addr string, statsPort int) {
	t.Helper()
	cfg, port, statsPort := seedWithAddresses(t, addrs)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{"run", "--config", cfg, "--bind-address", "127.0.0.1"}, flags...)
	return startProxy(t, addr, args...), addr, statsPort
}

func TestSeedReachesAllFourInTurn(t *testing.T) {
	bs := startCustomers(t, 4, nil)
	cfg, port, statsPort := seedWithAddresses(t, addrsOf(bs))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1")
	client := &http.Client{}
	var order []string
	for range 8 {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "Customer Application") {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if resp.Header.Get("Server") != "" {
			t.Fatalf("edgeproxy injected Server: %q", resp.Header.Get("Server"))
		}
		order = append(order, resp.Header.Get("X-Served-By"))
	}
	for i := 4; i < 8; i++ {
		if order[i] != order[i-4] {
			t.Fatalf("not round robin: %v", order)
		}
	}
	seen := map[string]bool{}
	for _, o := range order[:4] {
		seen[o] = true
	}
	if len(seen) != 4 {
		t.Fatalf("did not reach all four: %v", order)
	}
	h := bs[0].headers[0]
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Port") != strconv.Itoa(port) || h.Get("X-Forwarded-Proto") != "" {
		t.Fatalf("forwarded headers: %v", h)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/_haproxy_health_check", statsPort))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health check: %v %v", resp, err)
	}
	// The stats listener counts what was sent, as HAProxy's CSV and
	// Prometheus exporter would show it.
	csvBody := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/haproxy?stats;csv", statsPort))
	if !strings.HasPrefix(csvBody, "# pxname,svname,qcur,qmax,scur,smax,slim,stot,") ||
		!strings.Contains(csvBody, "\ncustomer-backend,BACKEND,") || strings.Count(csvBody, "\ncustomer-backend,address_127.0.0.1_") != 4 {
		t.Fatalf("stats CSV:\n%s", csvBody)
	}
	metrics := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", statsPort))
	if !strings.Contains(metrics, `haproxy_backend_http_responses_total{code="2xx",proxy="customer-backend"} 8`) ||
		!strings.Contains(metrics, `edgeproxy_backend_response_time_seconds_count{proxy="customer-backend"} 8`) {
		t.Fatalf("metrics lack the 8 responses:\n%s", metrics)
	}
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func TestValidateFixtures(t *testing.T) {
	files, _ := filepath.Glob("../../../shared/fixtures/edgelb/*.json")
	if len(files) < 30 {
		t.Fatalf("found %d fixtures", len(files))
	}
	for _, f := range files {
		if strings.HasSuffix(f, "INDEX.json") {
			continue
		}
		out, err := exec.Command(binPath, "validate", f).CombinedOutput()
		invalid := strings.Contains(f, "test-https-pool__usage")
		if invalid {
			if err == nil || !strings.Contains(string(out), "haproxy.") {
				t.Errorf("%s: want rejection naming a JSON path, got %v:\n%s", filepath.Base(f), err, out)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v\n%s", filepath.Base(f), err, out)
		}
	}
}

func dialRaw(t *testing.T, addr string) (*net.TCPConn, *bufio.Reader) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn), bufio.NewReader(c)
}

// expectCleanEOF fails on a reset: the close must be a FIN.
func expectCleanEOF(t *testing.T, br *bufio.Reader) {
	t.Helper()
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("want clean EOF, got %v", err)
	}
}

func TestConnectionCloseBothSidesNoReset(t *testing.T) {
	bs := startCustomers(t, 1, func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/server-close" {
				w.Header().Set("Connection", "close")
			}
			io.WriteString(w, "ok")
		}
	})
	_, addr, _ := runSeed(t, addrsOf(bs), "--timeout-keep-alive", "300ms")

	// Client says close: the response says close, then a FIN.
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, Close\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || !resp.Close {
		t.Fatalf("client close: %v close=%v", err, resp != nil && resp.Close)
	}
	io.Copy(io.Discard, resp.Body)
	expectCleanEOF(t, br)

	// Server says close: the client connection stays usable.
	c, br = dialRaw(t, addr)
	for i := range 3 {
		io.WriteString(c, "GET /server-close HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.Close {
			t.Fatalf("server close, request %d: %v close=%v", i, err, resp != nil && resp.Close)
		}
		io.Copy(io.Discard, resp.Body)
	}
	// edgeproxy's own idle timeout: a FIN, no reset, even with the client
	// sending right after the close.
	expectCleanEOF(t, br)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(50 * time.Millisecond)
}

func TestWebSocketEcho(t *testing.T) {
	bs := startCustomers(t, 1, func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				http.Error(w, "want upgrade", 400)
				return
			}
			conn, brw, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n")
			io.Copy(conn, brw) // echo every byte until the client closes
		}
	})
	_, addr, _ := runSeed(t, addrsOf(bs))
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake: %v %+v", err, resp)
	}
	for i := range 5 {
		msg := fmt.Sprintf("frame-%d|", i)
		io.WriteString(c, msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(br, got); err != nil || string(got) != msg {
			t.Fatalf("echo %d: %q %v", i, got, err)
		}
	}
	c.CloseWrite()
	expectCleanEOF(t, br)
}

func TestSIGTERMDrainsInFlight(t *testing.T) {
	bs := startCustomers(t, 1, func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(700 * time.Millisecond)
			io.WriteString(w, "slow but complete")
		}
	})
	p, addr, _ := runSeed(t, addrsOf(bs), "--grace-period", "5s")
	c, br := dialRaw(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(200 * time.Millisecond)
	p.cmd.Process.Signal(syscall.SIGTERM)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight request lost: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "slow but complete" || !resp.Close {
		t.Fatalf("drain response: %q close=%v", body, resp.Close)
	}
	expectCleanEOF(t, br)
	select {
	case err := <-p.waited:
		p.waited <- err
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("did not exit after drain")
	}
}

// TestAddressByDNSName uses a host name as an ADDRESS endpoint: it is
// resolved (and re-resolved) and every address it has becomes a server.
func TestAddressByDNSName(t *testing.T) {
	bs := startCustomers(t, 1, nil)
	_, p, _ := net.SplitHostPort(bs[0].addr)
	_, addr, _ := runSeed(t, []string{net.JoinHostPort("localhost", p)})
	for i := range 4 {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Served-By") != "customer-0" {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
}

// TestSeedOnPort80 is the acceptance scenario as written: the seed pool with
// four ADDRESS endpoints, its frontend on port 80 (of a loopback address of
// the test's own, so nothing else can hold it) and stats on 9090.
func TestSeedOnPort80(t *testing.T) {
	bs := startCustomers(t, 4, nil)
	cfg, _, _ := seedWithAddresses(t, addrsOf(bs))
	raw, _ := os.ReadFile(cfg)
	var pool map[string]any
	json.Unmarshal(raw, &pool)
	h := pool["haproxy"].(map[string]any)
	h["frontends"].([]any)[0].(map[string]any)["bindPort"] = 80
	h["stats"].(map[string]any)["bindPort"] = 9090
	raw, _ = json.Marshal(pool)
	os.WriteFile(cfg, raw, 0o644)
	ip := fmt.Sprintf("127.%d.%d.9", 30+os.Getpid()%200, 1+os.Getpid()/200%250)
	startProxy(t, ip+":80", "run", "--config", cfg, "--bind-address", ip)
	seen := map[string]int{}
	for range 8 {
		resp, err := http.Get("http://" + ip + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		seen[resp.Header.Get("X-Served-By")]++
	}
	if len(seen) != 4 {
		t.Fatalf("port 80 reached %v", seen)
	}
	for _, b := range bs {
		b.mu.Lock()
		h := b.headers[len(b.headers)-1]
		b.mu.Unlock()
		if h.Get("X-Forwarded-Port") != "80" || h.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Fatalf("headers at %s: %v", b.name, h)
		}
	}
	if got := fetch(t, "http://"+ip+":9090/_haproxy_health_check"); got != "OK\n" {
		t.Fatalf("health check %q", got)
	}
}

// TestAccessLogFile writes access logs to a file in both formats.
func TestAccessLogFile(t *testing.T) {
	bs := startCustomers(t, 1, nil)
	for _, format := range []string{"json", "httplog"} {
		cfg, port, _ := seedWithAddresses(t, addrsOf(bs))
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		logPath := filepath.Join(t.TempDir(), "access.log")
		p := startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1",
			"--access-log", logPath, "--access-log-format", format)
		for range 3 {
			resp, err := http.Get("http://" + addr + "/some/path?q=1")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		<-p.waited
		p.waited <- nil
		data, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s: %d lines:\n%s", format, len(lines), data)
		}
		for _, l := range lines {
			switch format {
			case "json":
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil || m["status"] != float64(200) || m["backend"] != "customer-backend" {
					t.Fatalf("json line %q: %v", l, err)
				}
			default:
				if !strings.Contains(l, " customer-backend/address_127.0.0.1_") || !strings.Contains(l, ` 200 `) || !strings.Contains(l, `"GET /some/path?q=1 HTTP/1.1"`) {
					t.Fatalf("httplog line %q", l)
				}
			}
		}
	}
}
