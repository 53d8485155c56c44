// Package e2e holds end-to-end tests of the stats listener that need
// programs from outside the module: HAProxy 2.6, the reference the CSV
// export and the Prometheus metrics are compared with, and headless
// Chromium, which loads the stats page as an operator would. Both come from
// Debian: scripts/install-test-deps.sh installs them, and a test fails,
// naming the script, when one is missing.
//
// TestMain builds the real binary from ../../cmd/edgeproxy; the tests run
// it, and HAProxy, as processes in front of in-process backends on
// loopback.
package e2e

import (
	"bytes"
	"context"
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

// edgeproxyBin is the binary TestMain built.
var edgeproxyBin string

// installHint is what a test says when a program it needs is missing.
const installHint = "run scripts/install-test-deps.sh (as root) to install Debian's haproxy and chromium"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgeproxy-stats-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	edgeproxyBin = filepath.Join(dir, "edgeproxy")
	out, err := exec.Command("go", "build", "-o", edgeproxyBin, "../../cmd/edgeproxy").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building edgeproxy: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireProgram returns the path of an external program, failing the test
// with the install hint when it is not on PATH.
func requireProgram(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed: %v; %s", name, err, installHint)
	}
	return p
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// process is a program a test started, in its own process group so that
// everything it forks ends with it.
type process struct {
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
	err    error // set before exited closes
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProcess starts a long-running program and waits until it accepts
// connections on every address in ready. The test's cleanup kills its
// process group (by the id of the process it started) and waits for it,
// and logs its output if the test failed.
func startProcess(t testing.TB, name string, args []string, ready ...string) *process {
	t.Helper()
	p := &process{name: name, cmd: exec.Command(args[0], args[1:]...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, p.cmd.Process.Pid)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for _, addr := range ready {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.exited:
				t.Fatalf("%s exited before listening on %s: %v\n%s", name, addr, p.err, p.output())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not listen on %s within 15s:\n%s", name, addr, p.output())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

// runBounded runs a short-lived program in its own process group and kills
// the group if it outlives timeout. It returns stdout and stderr.
func runBounded(t testing.TB, timeout time.Duration, env []string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if cmd.Process != nil {
		// Helpers the program forked and left behind share its group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: killed after %v: %w", filepath.Base(args[0]), timeout, ctx.Err())
	}
	return o.Bytes(), e.Bytes(), err
}

// backend is an in-process HTTP server standing for a customer task: 200
// for /, 404 for /missing, 500 for /error, each response naming the server
// in X-Served-By.
type backend struct {
	name string
	addr string
	port int
	srv  *http.Server
}

// startBackend serves on a free loopback port. With closeConns every
// response says "Connection: close", so proxies cannot pool connections
// to it and every request costs exactly one connection attempt.
func startBackend(t testing.TB, name string, closeConns bool) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: ln.Addr().String(), port: ln.Addr().(*net.TCPAddr).Port}
	body := []byte("<html><body><h1>Customer Application</h1></body></html>\n")
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Served-By", name)
			if closeConns {
				h.Set("Connection", "close")
			}
			h.Set("Content-Type", "text/html")
			switch r.URL.Path {
			case "/":
				w.Write(body)
			case "/missing":
				http.Error(w, "not found", http.StatusNotFound)
			case "/error":
				http.Error(w, "internal error", http.StatusInternalServerError)
			default:
				http.Error(w, "unexpected path", http.StatusBadRequest)
			}
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go b.srv.Serve(ln)
	t.Cleanup(b.stop)
	return b
}

// stop closes the listener and every connection: connects to the port are
// refused from then on.
func (b *backend) stop() { b.srv.Close() }

// serverName is the name edgeproxy gives an ADDRESS endpoint's server.
func (b *backend) serverName() string { return "address_127.0.0.1_" + strconv.Itoa(b.port) }

// service is one entry of the pool's backend services: an ADDRESS
// endpoint, with raw HAProxy server options (endpoint.miscStr).
type service struct {
	b       *backend
	miscStr string
}

// poolConfig writes the seed pool (cmd/edgeproxy/seed/multi-lb-config.json)
// with the frontend on port, the stats listener on statsPort, the
// services as ADDRESS endpoints, and, when hostEq is set, the frontend
// routing only that Host to customer-backend (no default backend, so any
// other Host has no route). It returns the file and the frontend's name as
// edgeproxy derives it from the document (before --bind-address).
func poolConfig(t testing.TB, port, statsPort int, hostEq string, services []service) (path, frontendName string) {
	t.Helper()
	return poolConfigWith(t, port, statsPort, hostEq, services, nil)
}

// poolConfigWith is poolConfig with raw HAProxy backend directives for
// customer-backend (backends[].miscStrs), such as "option httpchk GET /".
func poolConfigWith(t testing.TB, port, statsPort int, hostEq string, services []service, backendMiscStrs []string) (path, frontendName string) {
	t.Helper()
	raw, err := os.ReadFile("../../cmd/edgeproxy/seed/multi-lb-config.json")
	if err != nil {
		t.Fatal(err)
	}
	var pool map[string]any
	if err := json.Unmarshal(raw, &pool); err != nil {
		t.Fatal(err)
	}
	h := pool["haproxy"].(map[string]any)
	fe := h["frontends"].([]any)[0].(map[string]any)
	fe["bindPort"] = port
	if hostEq != "" {
		fe["linkBackend"] = map[string]any{"map": []any{map[string]any{"backend": "customer-backend", "hostEq": hostEq}}}
	}
	h["stats"].(map[string]any)["bindPort"] = statsPort
	var svcs []any
	for _, s := range services {
		ep := map[string]any{"type": "ADDRESS", "address": "127.0.0.1", "port": s.b.port}
		if s.miscStr != "" {
			ep["miscStr"] = s.miscStr
		}
		svcs = append(svcs, map[string]any{"endpoint": ep})
	}
	be := h["backends"].([]any)[0].(map[string]any)
	be["services"] = svcs
	if len(backendMiscStrs) > 0 {
		be["miscStrs"] = backendMiscStrs
	}
	out, err := json.MarshalIndent(pool, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "pool.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	bindAddress, _ := fe["bindAddress"].(string)
	if bindAddress == "" {
		bindAddress = "0.0.0.0" // Edge-LB's default, which names the frontend
	}
	return path, fmt.Sprintf("frontend_%s_%d", bindAddress, port)
}

// startEdgeproxy runs the binary on pool, bound to 127.0.0.1, and waits for
// the stats listener. edgeproxy binds its frontends before it, so the
// frontend's port is not probed: a probe would count as a connection.
func startEdgeproxy(t testing.TB, pool string, statsPort int) *process {
	t.Helper()
	return startProcess(t, "edgeproxy",
		[]string{edgeproxyBin, "run", "--config", pool, "--bind-address", "127.0.0.1", "--log-format", "text"},
		fmt.Sprintf("127.0.0.1:%d", statsPort))
}

// get fetches url and returns the status and body. Failures are fatal.
func get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// fetchOK fetches url and fails unless the answer is 200.
func fetchOK(t testing.TB, url string) string {
	t.Helper()
	code, body := get(t, &http.Client{Timeout: 10 * time.Second}, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", url, code, body)
	}
	return body
}

// eventually polls cond every 50 ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// oneLine shortens s for a log line.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
