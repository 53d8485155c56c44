package healthcheck

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// results records the outcome of every check of one Target, in order
// (Options.OnCheck). CheckFailures leaves out failures while Down, as
// HAProxy's chkfail does, so passed checks are counted here.
type results struct {
	mu sync.Mutex
	ok []bool
}

func (r *results) onCheck(_ *Target, res Result, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ok = append(r.ok, res.OK())
}

// passed returns the number of passed checks after the snapshot before,
// up to and including the snapshot after; -1 if they were not all seen.
func (r *results) passed(before, after TargetStatus) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if after.Checks < before.Checks || after.Checks > uint64(len(r.ok)) {
		return -1
	}
	n := 0
	for _, ok := range r.ok[before.Checks:after.Checks] {
		if ok {
			n++
		}
	}
	return n
}

func TestTCPRiseFall(t *testing.T) {
	b := newBackend(t, modeClose)
	var tr transitions
	var rs results
	c := newChecker(t, Options{OnChange: tr.onChange, OnCheck: rs.onCheck})
	tg := mustAdd(t, c, b.addr, tcpConfig())
	// The first check comes at random within inter, possibly at once.
	if s := tg.Snapshot(); s.Checks == 0 && (s.Weight == 0 || s.State != StateChecking) {
		t.Fatalf("before the first check: weight %d, State %v; want traffic, CHECKING", s.Weight, s.State)
	}

	waitFor(t, 5*time.Second, "first check", func() bool { return tr.len() >= 1 })
	if s := tr.at(0); s.Checks != 1 || s.LastResult != ResultL4OK {
		t.Fatalf("after the first check: %d checks, result %v; want 1, L4OK", s.Checks, s.LastResult)
	}

	b.down()
	waitFor(t, 5*time.Second, "UP>DOWN", func() bool { return tr.len() >= 2 })
	down := tr.at(1)
	if down.CheckFailures != 3 {
		t.Errorf("went down after %d failed checks, want fall = 3", down.CheckFailures)
	}
	if down.LastResult != ResultL4Conn || down.LastErr == nil || down.Downs != 1 {
		t.Errorf("down snapshot: result %v, err %v, downs %d; want L4CON, an error, 1", down.LastResult, down.LastErr, down.Downs)
	}
	if tg.Up() {
		t.Error("Up() = true after the listener closed")
	}

	b.up()
	waitFor(t, 5*time.Second, "DOWN>UP", func() bool { return tr.len() >= 3 })
	up := tr.at(2)
	if n := rs.passed(down, up); n != 2 {
		t.Errorf("came up after %d passed checks, want rise = 2", n)
	}
	if up.Downtime <= 0 || !up.LastChange.After(down.LastChange) {
		t.Errorf("downtime %v, last change %v after %v", up.Downtime, up.LastChange, down.LastChange)
	}
	if got, want := tr.list(), "CHECKING>UP UP>DOWN DOWN>UP"; got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
	if !tg.Up() {
		t.Error("Up() = false after rise")
	}
}

func TestHTTPCheckDownOn500UpOn200(t *testing.T) {
	b := newBackend(t, modeHTTP)
	b.status.Store(500)
	var tr transitions
	var rs results
	c := newChecker(t, Options{OnChange: tr.onChange, OnCheck: rs.onCheck})
	cfg := tcpConfig()
	cfg.HTTP = &HTTPCheck{Path: "/health"}
	tg := mustAdd(t, c, b.addr, cfg)

	waitFor(t, 5*time.Second, "first check", func() bool { return tr.len() >= 1 })
	down := tr.at(0)
	if down.State != StateDown || down.LastResult != ResultL7Status || down.LastCode != 500 {
		t.Fatalf("after a 500: state %v, result %v, code %d; want DOWN, L7STS, 500", down.State, down.LastResult, down.LastCode)
	}
	req := b.request()
	switch {
	case req.Method != "GET", req.URL.Path != "/health", req.Proto != "HTTP/1.1":
		t.Errorf("request line %s %s %s, want GET /health HTTP/1.1", req.Method, req.URL.Path, req.Proto)
	case req.Host != b.addr:
		t.Errorf("Host %q, want %q", req.Host, b.addr)
	case !req.Close:
		t.Error("request does not ask for Connection: close")
	case req.UserAgent() != "edgeproxy-healthcheck":
		t.Errorf("User-Agent %q", req.UserAgent())
	}

	b.status.Store(200)
	waitFor(t, 5*time.Second, "DOWN>UP", func() bool { return tr.len() >= 2 })
	up := tr.at(1)
	if n := rs.passed(down, up); n != 2 {
		t.Errorf("came up after %d passed checks, want rise = 2", n)
	}
	if up.LastResult != ResultL7OK || up.LastCode != 200 || !tg.Up() {
		t.Errorf("after 200s: result %v, code %d, Up %v", up.LastResult, up.LastCode, tg.Up())
	}
	if got, want := tr.list(), "CHECKING>DOWN DOWN>UP"; got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
}

func TestHTTPCheckResults(t *testing.T) {
	tests := []struct {
		name   string
		mode   backendMode
		raw    string
		expect int
		want   Result
		code   int
		err    error
	}{
		{name: "closes without answering", mode: modeRaw, raw: "", want: ResultL7Response, err: errEmptyResponse},
		{name: "not HTTP", mode: modeRaw, raw: "SSH-2.0-OpenSSH_9.6\r\n", want: ResultL7Response, err: errBadStatusLine},
		{name: "404", mode: modeRaw, raw: "HTTP/1.1 404 Not Found\r\n\r\n", want: ResultL7Status, code: 404, err: errStatus},
		{name: "302 passes", mode: modeRaw, raw: "HTTP/1.0 302 Found\r\nLocation: /x\r\n\r\n", want: ResultL7OK, code: 302},
		{name: "no reason phrase", mode: modeRaw, raw: "HTTP/1.1 204\r\n\r\n", want: ResultL7OK, code: 204},
		{name: "long reason phrase", mode: modeRaw, raw: "HTTP/1.1 200 " + strings.Repeat("x", 300) + "\r\n\r\n", want: ResultL7OK, code: 200},
		{name: "expected status missed", mode: modeRaw, raw: "HTTP/1.1 200 OK\r\n\r\n", expect: 204, want: ResultL7Status, code: 200, err: errStatus},
		{name: "expected status met", mode: modeRaw, raw: "HTTP/1.1 204 No Content\r\n\r\n", expect: 204, want: ResultL7OK, code: 204},
		{name: "never answers", mode: modeSilent, want: ResultL7Timeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t, tt.mode)
			b.raw.Store(tt.raw)
			c := newChecker(t, Options{})
			cfg := tcpConfig()
			cfg.Timeout = 100 * time.Millisecond
			cfg.HTTP = &HTTPCheck{ExpectStatus: tt.expect}
			tg := mustAdd(t, c, b.addr, cfg)
			waitFor(t, 5*time.Second, "first check", func() bool { return tg.Snapshot().Checks >= 1 })
			s := tg.Snapshot()
			if s.LastResult != tt.want || s.LastCode != tt.code {
				t.Fatalf("result %v code %d (%v), want %v code %d", s.LastResult, s.LastCode, s.LastErr, tt.want, tt.code)
			}
			if tt.err != nil && !errors.Is(s.LastErr, tt.err) {
				t.Errorf("error %v, want %v", s.LastErr, tt.err)
			}
			if wantUp := tt.want.OK(); tg.Up() != wantUp {
				t.Errorf("Up() = %v after one %v, want %v", tg.Up(), tt.want, wantUp)
			}
			if tt.want == ResultL7Timeout && s.LastDuration < cfg.Timeout {
				t.Errorf("timed out after %v, before the %v timeout", s.LastDuration, cfg.Timeout)
			}
		})
	}
}

func TestTCPCheckRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newChecker(t, Options{})
	tg := mustAdd(t, c, addr, tcpConfig())
	waitFor(t, 5*time.Second, "first check", func() bool { return tg.Snapshot().Checks >= 1 })
	if s := tg.Snapshot(); s.LastResult != ResultL4Conn || s.State != StateDown {
		t.Fatalf("result %v state %v, want L4CON DOWN (a never-reachable server goes down at its first check)", s.LastResult, s.State)
	}
}

func TestCheckPortOverride(t *testing.T) {
	b := newBackend(t, modeClose)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	c := newChecker(t, Options{})
	cfg := tcpConfig()
	cfg.Port = b.ln.Addr().(*net.TCPAddr).Port
	tg := mustAdd(t, c, dead, cfg)
	waitFor(t, 5*time.Second, "first check", func() bool { return tg.Snapshot().Checks >= 1 })
	s := tg.Snapshot()
	if s.CheckAddr != b.addr || s.Addr != dead || s.LastResult != ResultL4OK || !tg.Up() {
		t.Fatalf("check addr %s (want %s), addr %s, result %v, Up %v", s.CheckAddr, b.addr, s.Addr, s.LastResult, tg.Up())
	}
}

func TestPassiveEjectionAndRecovery(t *testing.T) {
	b := newBackend(t, modeClose)
	var tr transitions
	var rs results
	c := newChecker(t, Options{OnChange: tr.onChange, OnCheck: rs.onCheck})
	cfg := tcpConfig()
	cfg.Inter = 400 * time.Millisecond
	cfg.FastInter = 20 * time.Millisecond
	tg := mustAdd(t, c, b.addr, cfg)
	waitFor(t, 5*time.Second, "first check", func() bool { return tr.len() >= 1 })

	tg.ReportFailure()
	tg.ReportFailure()
	tg.ReportSuccess() // resets the streak
	tg.ReportFailure()
	tg.ReportFailure()
	if !tg.Up() {
		t.Fatal("down after 2 consecutive passive failures; the limit is fall = 3")
	}
	ejected := time.Now()
	tg.ReportFailure()
	if tg.Up() || tg.State() != StateDown {
		t.Fatalf("after 3 consecutive passive failures: Up %v, State %v; want false, DOWN at once", tg.Up(), tg.State())
	}
	s := tg.Snapshot()
	if s.Ejections != 1 || s.PassiveFailures != 5 || s.Check != StateDown {
		t.Errorf("ejections %d, passive failures %d, check %v; want 1, 5, DOWN", s.Ejections, s.PassiveFailures, s.Check)
	}

	waitFor(t, 5*time.Second, "DOWN>UP", func() bool { return tr.len() >= 3 })
	if took := time.Since(ejected); took >= cfg.Inter {
		t.Errorf("recovery took %v; with fastinter %v it should beat inter %v", took, cfg.FastInter, cfg.Inter)
	}
	if n := rs.passed(s, tr.at(2)); n != 2 {
		t.Errorf("came back after %d passed checks, want rise = 2", n)
	}
	if got, want := tr.list(), "CHECKING>UP UP>DOWN DOWN>UP"; got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
}

func TestMarathonHealthAndDrainingGateTraffic(t *testing.T) {
	b := newBackend(t, modeClose)
	var tr transitions
	c := newChecker(t, Options{OnChange: tr.onChange})
	tg := mustAdd(t, c, b.addr, tcpConfig())
	waitFor(t, 5*time.Second, "first check", func() bool { return tr.len() >= 1 })

	tg.SetMarathonHealthy(false)
	if s := tg.Snapshot(); tg.Up() || s.State != StateDown || s.Check != StateUp || s.MarathonHealthy {
		t.Fatalf("Marathon unhealthy: Up %v, state %v, check %v, healthy %v", tg.Up(), s.State, s.Check, s.MarathonHealthy)
	}
	tg.SetMarathonHealthy(true)
	tg.SetDraining(true)
	if s := tg.Snapshot(); tg.Up() || s.State != StateDraining || !s.Draining {
		t.Fatalf("draining: Up %v, state %v, draining %v", tg.Up(), s.State, s.Draining)
	}
	time.Sleep(5 * cfgInter(tg)) // checks go on while draining
	if s := tg.Snapshot(); s.State != StateDraining || s.Checks < 2 {
		t.Fatalf("while draining: state %v after %d checks", s.State, s.Checks)
	}
	tg.SetDraining(false)
	if !tg.Up() {
		t.Fatal("Up() = false after draining ended")
	}
	if got, want := tr.list(), "CHECKING>UP UP>DOWN DOWN>UP UP>DRAIN DRAIN>UP"; got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
}

func cfgInter(tg *Target) time.Duration { return tg.Config().Inter }

func TestFirstChecksAreSpreadOverInter(t *testing.T) {
	const n = 60
	// Long enough that scheduling delays on a busy 2-core machine (tens of
	// milliseconds) are small against a tenth of it.
	const inter = 2 * time.Second
	b := newBackend(t, modeClose)
	var mu sync.Mutex
	first := make(map[*Target]time.Duration, n)
	start := time.Now()
	c := newChecker(t, Options{OnCheck: func(tg *Target, _ Result, _ time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := first[tg]; !ok {
			first[tg] = time.Since(start)
		}
	}})
	cfg := tcpConfig()
	cfg.Inter = inter
	for range n {
		mustAdd(t, c, b.addr, cfg)
	}
	waitFor(t, 10*time.Second, "every first check", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(first) == n
	})
	mu.Lock()
	defer mu.Unlock()
	var buckets [10]int
	lo, hi := time.Hour, time.Duration(0)
	for _, d := range first {
		lo, hi = min(lo, d), max(hi, d)
		buckets[min(int(d*10/inter), 9)]++
	}
	t.Logf("first checks between %v and %v; per tenth of inter: %v", lo, hi, buckets)
	if hi > inter+time.Second {
		t.Errorf("a first check came %v after Add, well beyond inter %v", hi, inter)
	}
	if hi-lo < inter/2 {
		t.Errorf("first checks spread over %v only; want most of inter %v", hi-lo, inter)
	}
	for i, k := range buckets {
		if k > n/3 {
			t.Errorf("%d of %d first checks fell in tenth %d of the interval: a burst", k, n, i)
		}
	}
}

// checkGoroutines counts the goroutines of Checkers: timer goroutines
// and check workers, busy or idle, and the prober's loop and hook runner.
func checkGoroutines() int {
	n := 0
	for _, g := range strings.Split(packageGoroutines(), "\n\n") {
		for _, f := range []string{"(*Target).fire", "(*Checker).worker", "(*probeLoop).run", "(*hookRunner).run"} {
			if strings.Contains(g, "healthcheck."+f) {
				n++
				break
			}
		}
	}
	return n
}

// checkGoroutinesExit waits for the goroutines of closed Checkers to
// exit: Close returns when they are done, a moment before they are gone.
func checkGoroutinesExit(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for g := checkGoroutines(); g != 0; g = checkGoroutines() {
		if time.Now().After(deadline) {
			t.Errorf("%d checker goroutines left after Close:\n%s", g, packageGoroutines())
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// busyChecks counts goroutines inside a check.
func busyChecks() int {
	return strings.Count(packageGoroutines(), "healthcheck.(*Target).probe")
}

func TestRemoveStopsChecks(t *testing.T) {
	b := newBackend(t, modeClose)
	var changes atomic.Int32
	c := newChecker(t, Options{OnChange: func(*Target, State, State) { changes.Add(1) }})
	tg := mustAdd(t, c, b.addr, tcpConfig())
	other := mustAdd(t, c, b.addr, tcpConfig())
	waitFor(t, 10*time.Second, "three checks", func() bool { return tg.Snapshot().Checks >= 3 })

	c.Remove(tg)
	c.Remove(tg) // idempotent
	checks := tg.Snapshot().Checks
	time.Sleep(10 * tcpConfig().Inter)
	if got := tg.Snapshot().Checks; got > checks+1 {
		t.Errorf("%d checks ran after Remove", got-checks)
	}
	if ts := c.Targets(); len(ts) != 1 || ts[0] != other {
		t.Errorf("Targets() after Remove = %v, want only the other one", ts)
	}
	before := changes.Load()
	tg.SetDraining(true)
	if changes.Load() != before {
		t.Error("OnChange called for a removed Target")
	}

	c.Remove(other)
	waitFor(t, 10*time.Second, "no check in flight", func() bool { return busyChecks() == 0 })
	c.Close()
	checkGoroutinesExit(t)
}

func TestCloseAbortsChecksInFlight(t *testing.T) {
	b := newBackend(t, modeSilent)
	c := NewChecker(Options{Logf: t.Logf})
	cfg := tcpConfig()
	cfg.Timeout = time.Minute
	cfg.HTTP = &HTTPCheck{}
	for range 5 {
		mustAdd(t, c, b.addr, cfg)
	}
	waitFor(t, 5*time.Second, "checks in flight", func() bool { return b.accepts.Load() >= 5 })
	start := time.Now()
	c.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v with checks hanging on a silent backend", took)
	}
	checkGoroutinesExit(t)
	if _, err := c.Add(b.addr, cfg); !errors.Is(err, ErrClosed) {
		t.Errorf("Add after Close: %v, want ErrClosed", err)
	}
	c.Close() // idempotent
}

func TestFewGoroutinesForManyTargets(t *testing.T) {
	const n = 200
	b := newBackend(t, modeClose)
	var checks atomic.Int64
	c := newChecker(t, Options{
		Logf:    func(string, ...any) {},
		OnCheck: func(*Target, Result, time.Duration) { checks.Add(1) },
	})
	cfg := tcpConfig()
	// Spread over 2 s, 200 one-millisecond checks need a handful of
	// workers; a goroutine per target would show ~200 whatever the load
	// (this also runs under -race on a busy 2-core machine).
	cfg.Inter = 2 * time.Second
	for range n {
		mustAdd(t, c, b.addr, cfg)
	}
	peak, samples := 0, 0
	waitFor(t, 15*time.Second, "one check per target", func() bool {
		peak = max(peak, checkGoroutines())
		samples++
		time.Sleep(10 * time.Millisecond)
		return checks.Load() >= n
	})
	t.Logf("%d targets, %d checks: at most %d checker goroutines in %d samples", n, checks.Load(), peak, samples)
	if peak >= n/4 {
		t.Errorf("%d goroutines in checks for %d targets; want far fewer than one per target", peak, n)
	}
}

func TestMaxConcurrentBoundsChecksInFlight(t *testing.T) {
	b := newBackend(t, modeSilent)
	c := newChecker(t, Options{MaxConcurrent: 2})
	cfg := tcpConfig()
	cfg.Timeout = 60 * time.Millisecond
	cfg.HTTP = &HTTPCheck{}
	for range 6 {
		mustAdd(t, c, b.addr, cfg)
	}
	// Every check holds a slot for its whole timeout; the semaphore is the
	// only thing that can keep checks in flight at two. Sample it directly:
	// the backend's own count lags behind resets on a busy machine.
	peak, seen := 0, 0
	deadline := time.Now().Add(600 * time.Millisecond)
	for time.Now().Before(deadline) {
		peak = max(peak, len(c.sem))
		b.mu.Lock()
		seen = max(seen, len(b.conns))
		b.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	if peak < 1 || peak > 2 {
		t.Errorf("at most %d checks in flight at once, want 1 or 2 (MaxConcurrent)", peak)
	}
	if seen < 1 || seen > 6 {
		t.Errorf("backend saw %d connections at once, want between 1 and the 6 targets", seen)
	}
}
