package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/elb/elbtest"
)

// Helpers of the AWS end-to-end tests (aws_e2e_test.go): the fake ELB API
// and IMDSv2 wired into the binary's environment, probes that run inside
// the fake at the moment it answers a call, and a keep-alive load that
// follows the drain model described at drainLoad.

// elbFake is an elbtest server whose answers can trigger hooks.
type elbFake struct {
	*elbtest.Server
	mu    sync.Mutex
	hooks map[string]func() // by action
}

func newELBFake(t *testing.T) *elbFake {
	t.Helper()
	f := &elbFake{hooks: map[string]func(){}}
	f.Server = elbtest.New(elbtest.Options{Logf: f.logf})
	t.Cleanup(f.Close)
	return f
}

// onSuccess runs hook each time the fake answers action with 200: the call
// has taken effect in the fake's model, and edgeproxy has not seen the
// answer yet (the hook runs before the response is written).
func (f *elbFake) onSuccess(action string, hook func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hooks[action] = hook
}

// logf receives elbtest's per-request line
// "elbtest: ACTION VERSION (ATTEMPT) -> STATUS".
func (f *elbFake) logf(format string, args ...any) {
	fields := strings.Fields(fmt.Sprintf(format, args...))
	if len(fields) < 3 || fields[len(fields)-1] != "200" {
		return
	}
	f.mu.Lock()
	hook := f.hooks[fields[1]]
	f.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// env is the binary's environment: the parent's without AWS_* and
// EDGEPROXY_* variables, plus the SDK pointed at the fake with static
// credentials and no shared configuration files.
func (f *elbFake) env(t *testing.T) []string {
	dir := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "EDGEPROXY_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_ENDPOINT_URL="+f.URL(),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT="+f.IMDSURL(),
		"AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=secret",
		"AWS_REGION="+f.Region(),
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
	)
}

// successes returns the calls of action the fake answered with 200.
func (f *elbFake) successes(action string) []elbtest.Request {
	var out []elbtest.Request
	for _, r := range f.Requests() {
		if r.Action == action && r.Status == http.StatusOK {
			out = append(out, r)
		}
	}
	return out
}

// answered counts the calls answered with the AWS error code.
func (f *elbFake) answered(code string) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Code == code {
			n++
		}
	}
	return n
}

// registration returns the balancer's entry for id (and port, unless 0).
func (f *elbFake) registration(lb, id string, port int) (elbtest.Registration, bool) {
	for _, r := range f.Registrations(lb) {
		if r.ID == id && (port == 0 || r.Port == port) {
			return r, true
		}
	}
	return elbtest.Registration{}, false
}

// active reports whether id is registered and not draining.
func (f *elbFake) active(lb, id string, port int) bool {
	r, ok := f.registration(lb, id, port)
	return ok && r.State != "draining" && !strings.Contains(r.Reason, "deregistration")
}

// startProxyEnv runs the binary with env (nil: the test's own) and waits
// until addr accepts connections.
func startProxyEnv(t testing.TB, addr string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = env
	var buf bytes.Buffer
	var mu sync.Mutex
	cmd.Stderr = lockedWriter{&buf, &mu}
	cmd.Stdout = lockedWriter{&buf, &mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &buf, mu: &mu, waited: make(chan error, 1)}
	go func() { p.waited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL) // only the process this test started
		<-p.waited
		if t.Failed() {
			t.Logf("edgeproxy output:\n%s", p.output())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case err := <-p.waited:
			t.Fatalf("edgeproxy exited: %v\n%s", err, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("edgeproxy did not listen on %s:\n%s", addr, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sigterm sends SIGTERM and waits up to limit for the exit; it returns how
// long the process took and its exit error.
func (p *proc) sigterm(t *testing.T, limit time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.waited:
		p.waited <- err // for the cleanup
		return time.Since(start), err
	case <-time.After(limit):
		t.Fatalf("edgeproxy did not exit within %v of SIGTERM", limit)
		return 0, nil
	}
}

// probe GETs url on a new connection without asking for it to be closed,
// so that a "Connection: close" in the answer is edgeproxy's own.
func probe(url string, timeout time.Duration) (status int, closing bool, err error) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: timeout}
	resp, err := c.Get(url)
	if err != nil {
		return 0, false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Close, nil
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Now()
}

// metricValue finds the sample of metric name whose labels contain
// target="target" in a Prometheus text exposition.
func metricValue(body, name, target string) (float64, bool) {
	return metricWith(body, name, `target="`+target+`"`)
}

// metricWith finds the first sample of metric name whose labels contain
// label (a `key="value"` pair; "" for any).
func metricWith(body, name, label string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, label) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		return v, err == nil
	}
	return 0, false
}

// waitMetric waits until edgeproxy's metric name{target} satisfies ok: the
// fake's model changes before its answer reaches edgeproxy.
func waitMetric(t *testing.T, statsPort int, name, target string, ok func(float64) bool) {
	t.Helper()
	var last string
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", statsPort))
		v, found := metricValue(body, name, target)
		if found && ok(v) {
			return
		}
		last = fmt.Sprintf("%v (found %v)", v, found)
		if time.Now().After(deadline) {
			t.Errorf("%s{target=%q} = %s", name, target, last)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// timeline records when things first happened, for ordering assertions.
type timeline struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (tl *timeline) mark(what string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if tl.at == nil {
		tl.at = map[string]time.Time{}
	}
	if _, ok := tl.at[what]; !ok {
		tl.at[what] = time.Now()
	}
}

func (tl *timeline) get(what string) (time.Time, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	at, ok := tl.at[what]
	return at, ok
}

// pollHealth GETs the stats health endpoint every 20 ms until stop, and
// marks the first 200 and first 503 it sees after start.
func pollHealth(statsPort int, tl *timeline, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Go(func() {
		url := fmt.Sprintf("http://127.0.0.1:%d/_haproxy_health_check", statsPort)
		for range 5000 { // bounded: 100 s
			select {
			case <-stop:
				return
			default:
			}
			if code, _, err := probe(url, time.Second); err == nil {
				tl.mark("health " + strconv.Itoa(code))
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	return &wg
}

// drainLoad sends GETs from a few keep-alive clients, standing in for a
// load balancer's traffic, and classifies every outcome under this model
// of a balancer in front of edgeproxy:
//
//   - Until the balancer has finished draining the target (the fake no
//     longer lists it), every request must succeed.
//   - A response with "Connection: close" retires its connection; the
//     client sends its next request on a new one (Go's Transport does).
//   - Once the target is drained a real balancer sends nothing more, but
//     these clients go on until edgeproxy's listener is closed. A refused
//     connection then (or one reset in the accept queue of the listener
//     closing) is where a balancer would have stopped: it ends that
//     client and is not a failure. The same refusal before the drain
//     completed is a failure, as is any other error at any time.
type drainLoad struct {
	mu     sync.Mutex
	events []loadEvent
	stop   chan struct{}
	wg     sync.WaitGroup
}

type loadEvent struct {
	client  int
	start   time.Time
	at      time.Time
	err     error
	status  int
	body    string
	closing bool // the response said "Connection: close"
	reused  bool // sent on a kept-alive connection
}

func startDrainLoad(t *testing.T, url string, clients int) *drainLoad {
	l := &drainLoad{stop: make(chan struct{})}
	for client := range clients {
		l.wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			for range 20000 { // bounded: about 4 minutes
				select {
				case <-l.stop:
					return
				default:
				}
				ev := loadEvent{client: client, start: time.Now()}
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { ev.reused = i.Reused }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
				resp, err := c.Do(req)
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					ev.status, ev.body, ev.closing = resp.StatusCode, string(b), resp.Close
				}
				ev.at, ev.err = time.Now(), err
				l.mu.Lock()
				l.events = append(l.events, ev)
				l.mu.Unlock()
				if refusedAtDial(err) {
					return // the listener is gone
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	t.Cleanup(l.end)
	return l
}

func (l *drainLoad) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// finish waits up to limit for every client to stop by itself (each stops
// at its first refused connection), then stops the rest.
func (l *drainLoad) finish(limit time.Duration) {
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
	}
	l.end()
}

func (l *drainLoad) snapshot() []loadEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loadEvent(nil), l.events...)
}

// failures returns the outcomes the model counts as failed, given when the
// balancer finished draining (zero: not yet).
func (l *drainLoad) failures(drained time.Time) []string {
	var out []string
	for _, ev := range l.snapshot() {
		switch {
		case ev.err != nil && refusedAtDial(ev.err) && !drained.IsZero() && ev.at.After(drained):
		case ev.err != nil:
			out = append(out, fmt.Sprintf("%s-%s: %v (reused connection: %v)", ev.start.Format("15:04:05.000"), ev.at.Format("15:04:05.000"), ev.err, ev.reused))
		case ev.status != 200 || !strings.Contains(ev.body, "Customer Application"):
			out = append(out, fmt.Sprintf("%s: status %d %q", ev.at.Format("15:04:05.000"), ev.status, ev.body))
		}
	}
	return out
}

// refusedAtDial reports a connection the listener never took: refused, or
// reset while still in the accept queue of a listener that closed. Either
// way no request was sent.
func refusedAtDial(err error) bool {
	var op *net.OpError
	dial := errors.As(err, &op) && op.Op == "dial"
	return errors.Is(err, syscall.ECONNREFUSED) || dial && errors.Is(err, syscall.ECONNRESET)
}

// checkNoFailures fails the test if any outcome so far failed.
func (l *drainLoad) checkNoFailures(t *testing.T, drained time.Time) {
	t.Helper()
	if f := l.failures(drained); len(f) > 0 {
		t.Fatalf("%d of %d requests failed, e.g. %q", len(f), len(l.snapshot()), f[:min(5, len(f))])
	}
}
