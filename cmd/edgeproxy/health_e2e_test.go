package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Backend health through the real binary (issue "Backend health"): a backend
// killed under load, a hung one, one failing its HTTP check, one resetting
// mid-response, and all of them down. Every check runs at
// "inter 200ms rise 2 fall 3" (check.customStr in the pool).

const (
	hcInter = 200 * time.Millisecond
	hcRise  = 2
	hcFall  = 3
	hcCheck = "inter 200ms rise 2 fall 3"
)

// checkWindow is the longest n check intervals can take: each is spread by
// up to 5% (spread-checks 5) and snapped to a 5 ms grid; the 100 ms slack
// covers the checks themselves, the 10 ms stats polling and timers firing
// late on a busy two-core host.
func checkWindow(n int) time.Duration {
	return time.Duration(n)*hcInter*105/100 + 100*time.Millisecond
}

var httpCheck = map[string]any{"httpchk": true, "httpchkMiscStr": "GET /health"}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestHealthBackendKilledAndRestarted: four backend processes under steady
// keep-alive GET load; one is SIGKILLed. No GET fails, edgeproxy stops
// sending to it within inter*fall, and a process restarted on the same port
// takes traffic again after rise passed checks.
func TestHealthBackendKilledAndRestarted(t *testing.T) {
	var procs []*backendProc
	var addrs []string
	for range 4 {
		p := startBackendProc(t, "127.0.0.1:0")
		procs = append(procs, p)
		addrs = append(addrs, p.addr)
	}
	cfg, port, statsPort := healthPool(t, addrs, hcCheck, nil)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1")
	waitStats(t, statsPort, 5*time.Second, "all four checked UP", allChecked(addrs))
	l := startGetLoad(t, "http://"+addr+"/", 4)
	waitAllServe(t, l, addrs)

	victim := procs[0]
	sv := serverName(victim.addr)
	victim.kill()
	killed := time.Now()
	// Poll for a second: when the server turned DOWN, and when edgeproxy
	// last tried it (lbtot: requests sent plus failed connects).
	var downAt, lastTry time.Time
	lbtot := atoi(statsRows(t, statsPort)[sv]["lbtot"])
	for time.Since(killed) < time.Second {
		r := statsRows(t, statsPort)[sv]
		now := time.Now()
		if n := atoi(r["lbtot"]); n != lbtot {
			lbtot, lastTry = n, now
		}
		if r["status"] == "DOWN" && downAt.IsZero() {
			downAt = now
		}
		time.Sleep(10 * time.Millisecond)
	}
	if downAt.IsZero() {
		t.Fatalf("killed backend not DOWN after 1 s: %v", statsRows(t, statsPort)[sv])
	}
	eject := downAt.Sub(killed)
	stopped := time.Duration(0)
	if !lastTry.IsZero() {
		stopped = lastTry.Sub(killed)
	}
	if limit := hcInter * hcFall; eject > limit || stopped > limit {
		t.Errorf("dead backend DOWN after %v, last tried after %v; want both within inter*fall = %v", eject, stopped, limit)
	}
	r := statsRows(t, statsPort)[sv]
	if r["check_status"] != "L4CON" || r["chkdown"] != "1" {
		t.Errorf("dead backend's row: check_status %q chkdown %q", r["check_status"], r["chkdown"])
	}

	again := startBackendProc(t, victim.addr)
	restarted := time.Now()
	upAt := waitStats(t, statsPort, 3*time.Second, "restarted backend UP", statusIs(victim.addr, "UP"))
	back := upAt.Sub(restarted)
	newID := fmt.Sprintf("%s pid=%d", victim.addr, again.cmd.Process.Pid)
	var firstReq time.Duration
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if at, ok := l.firstBy(newID); ok {
			firstReq = at.Sub(restarted)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("restarted backend %s got no request", newID)
		}
	}
	// rise passes are rise-1 fastinters apart (less 5% spread and the
	// grid), so coming back faster would mean fewer than rise checks.
	if lo, hi := (hcRise-1)*hcInter*3/4, checkWindow(hcRise); back < lo || back > hi {
		t.Errorf("restarted backend UP after %v; want after rise=%d checks, between %v and %v", back, hcRise, lo, hi)
	}
	waitAllServe(t, l, addrs)
	l.checkNoFailures(t)
	t.Logf("%d GETs, 0 failed, slowest %v; SIGKILL -> DOWN seen in stats %v (%s), last request attempt seen %v after the kill; restart -> UP seen %v (%s), first request %v",
		l.total.Load(), l.slowest, eject, stateChange(p, victim.addr, "DOWN", killed), stopped,
		back, stateChange(p, victim.addr, "UP", restarted), firstReq)
}

// TestHealthHungBackend: one of four backends starts accepting connections
// and reading requests but never answers. With an HTTP check and
// "timeout server 300ms", GETs that meet it are retried elsewhere after the
// timeout (none fails), and it is marked DOWN within inter*fall.
func TestHealthHungBackend(t *testing.T) {
	bs := startModalBackends(t, 4)
	addrs := modalAddrs(bs)
	const serverTimeout = 300 * time.Millisecond
	cfg, port, statsPort := healthPool(t, addrs, hcCheck, map[string]any{
		"customCheck": httpCheck,
		"miscStrs":    []any{"timeout server 300ms"},
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1")
	waitStats(t, statsPort, 5*time.Second, "all four checked UP", allChecked(addrs))
	l := startGetLoad(t, "http://"+addr+"/", 4)
	waitAllServe(t, l, addrs)

	v := bs[0]
	v.mode.Store(modeHang)
	hung := time.Now()
	downAt := waitStats(t, statsPort, 3*time.Second, "hung backend DOWN", statusIs(v.addr, "DOWN"))
	eject := downAt.Sub(hung)
	time.Sleep(50 * time.Millisecond)
	n := v.requests.Load()
	time.Sleep(3 * hcInter)
	if got := v.requests.Load(); got != n {
		t.Errorf("hung backend DOWN but got %d more requests", got-n)
	}
	waitAllServe(t, l, addrs[1:])
	l.checkNoFailures(t)
	rows := statsRows(t, statsPort)
	r := rows[serverName(v.addr)]
	if r["status"] != "DOWN" || r["check_status"] != "L7TOUT" || atoi(r["eresp"]) == 0 {
		t.Errorf("hung backend's row: status %q check_status %q eresp %q", r["status"], r["check_status"], r["eresp"])
	}
	if atoi(rows["BACKEND"]["wredis"]) == 0 || l.slowest < serverTimeout {
		t.Errorf("no GET was redispatched after the server timeout (wredis %q, slowest %v)", rows["BACKEND"]["wredis"], l.slowest)
	}
	if eject > hcInter*hcFall {
		t.Errorf("hung backend DOWN after %v; want within inter*fall = %v", eject, hcInter*hcFall)
	}
	if l.slowest > serverTimeout+time.Second {
		t.Errorf("slowest GET took %v", l.slowest)
	}
	t.Logf("%d GETs, 0 failed, slowest %v (timeout server %v, then another server); hang -> DOWN %v; %s",
		l.total.Load(), l.slowest, serverTimeout, eject, stateChange(p, v.addr, "DOWN", hung))
}

// TestHealthCheckFails500: one of four backends answers 500 on the check
// path only. The HTTP check takes it DOWN after fall failures, it gets no
// more requests, the other three keep serving, no GET fails.
func TestHealthCheckFails500(t *testing.T) {
	bs := startModalBackends(t, 4)
	addrs := modalAddrs(bs)
	cfg, port, statsPort := healthPool(t, addrs, hcCheck, map[string]any{"customCheck": httpCheck})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1")
	waitStats(t, statsPort, 5*time.Second, "all four checked UP", allChecked(addrs))
	l := startGetLoad(t, "http://"+addr+"/", 4)
	waitAllServe(t, l, addrs)

	v := bs[0]
	v.mode.Store(modeHealth500)
	failing := time.Now()
	downAt := waitStats(t, statsPort, 3*time.Second, "backend failing its check DOWN", statusIs(v.addr, "DOWN"))
	eject := downAt.Sub(failing)
	time.Sleep(50 * time.Millisecond)
	n, checks := v.requests.Load(), v.checks.Load()
	time.Sleep(3 * hcInter)
	if got := v.requests.Load(); got != n {
		t.Errorf("backend DOWN but got %d more requests", got-n)
	}
	if v.checks.Load() == checks {
		t.Error("no more checks reached the DOWN backend")
	}
	waitAllServe(t, l, addrs[1:])
	l.checkNoFailures(t)
	r := statsRows(t, statsPort)[serverName(v.addr)]
	if r["check_status"] != "L7STS" || r["check_code"] != "500" {
		t.Errorf("failing backend's row: check_status %q check_code %q", r["check_status"], r["check_code"])
	}
	for _, a := range addrs[1:] {
		if s := statsRows(t, statsPort)[serverName(a)]["status"]; s != "UP" {
			t.Errorf("healthy backend %s is %s", a, s)
		}
	}
	// The first failing check comes at most inter after the switch, each
	// next one fastinter later: fall failures cannot come sooner than
	// (fall-1) intervals, nor later than fall of them.
	if lo, hi := (hcFall-1)*hcInter*9/10, checkWindow(hcFall); eject < lo || eject > hi {
		t.Errorf("backend DOWN %v after its check started failing; want between %v and %v (inter*fall = %v)", eject, lo, hi, hcInter*hcFall)
	}
	t.Logf("%d GETs, 0 failed, slowest %v; check 500 -> DOWN seen in stats %v (%s; inter*fall = %v)",
		l.total.Load(), l.slowest, eject, stateChange(p, v.addr, "DOWN", failing), hcInter*hcFall)
}

// TestHealthResetMidResponse: the backends break responses with a reset
// (SO_LINGER 0). Where no byte of the response reached the client yet,
// the client gets edgeproxy's 502; where the head is already on its way
// (bodies over 16 KiB stream), edgeproxy closes the client connection and
// the client sees its body end early. Nobody hangs; other clients are
// unaffected.
func TestHealthResetMidResponse(t *testing.T) {
	addrs := []string{startResetBackend(t), startResetBackend(t)}
	cfg, port, statsPort := healthPool(t, addrs, hcCheck, nil)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1")
	waitStats(t, statsPort, 5*time.Second, "both checked UP", allChecked(addrs))
	l := startGetLoad(t, "http://"+addr+"/", 3)
	waitAllServe(t, l, addrs)

	cases := []struct {
		path      string
		status    int
		truncated bool // the head arrives, the body ends early
	}{
		{"/reset-in-head", 502, false},
		{"/reset-small-body", 502, false}, // read whole before sending: nothing sent yet
		{"/reset-big-body", 200, true},    // streamed: the head was already sent
		{"/reset-chunked-body", 200, true},
	}
	var report []string
	for round := range 2 { // one round per backend, round robin
		for _, c := range cases {
			tr := &http.Transport{}
			client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			start := time.Now()
			resp, err := client.Get("http://" + addr + c.path)
			if err != nil {
				t.Fatalf("%s: %v after %v", c.path, err, time.Since(start))
			}
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			tr.CloseIdleConnections()
			took := time.Since(start)
			switch {
			case resp.StatusCode != c.status:
				t.Errorf("%s: status %d, want %d", c.path, resp.StatusCode, c.status)
			case c.truncated && (rerr == nil || strings.Contains(rerr.Error(), "timeout")):
				t.Errorf("%s: body of %d bytes read with %v; want it cut short", c.path, len(body), rerr)
			case !c.truncated && (rerr != nil || string(body) != "502 Bad Gateway\n"):
				t.Errorf("%s: body %q, %v", c.path, body, rerr)
			case took > time.Second:
				t.Errorf("%s: took %v", c.path, took)
			}
			if round == 0 {
				report = append(report, fmt.Sprintf("%s: %d, %d body bytes, %v, in %v", c.path, resp.StatusCode, len(body), rerr, took.Round(time.Millisecond)))
			}
		}
	}
	waitAllServe(t, l, addrs)
	l.checkNoFailures(t)
	if l.slowest > time.Second {
		t.Errorf("a bystander GET took %v", l.slowest)
	}
	t.Logf("%d bystander GETs, 0 failed, slowest %v; %s", l.total.Load(), l.slowest, strings.Join(report, "; "))
}

// startResetBackend serves HTTP/1.1 by hand so that it can break a response
// exactly where the path says; other paths get the usual page.
func startResetBackend(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	id := ln.Addr().String()
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			go serveResetConn(c.(*net.TCPConn), id)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return id
}

func serveResetConn(c *net.TCPConn, id string) {
	defer c.Close()
	br := bufio.NewReader(c)
	reset := func(after time.Duration) {
		time.Sleep(after) // let edgeproxy take what was sent
		c.SetLinger(0)
		c.Close()
	}
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		switch req.URL.Path {
		case "/reset-in-head":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
			reset(50 * time.Millisecond)
			return
		case "/reset-small-body":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("x", 100))
			reset(50 * time.Millisecond)
			return
		case "/reset-big-body":
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 1<<20)
			c.Write(make([]byte, 256<<10))
			reset(100 * time.Millisecond)
			return
		case "/reset-chunked-body":
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			for range 8 {
				fmt.Fprintf(c, "1000\r\n%s\r\n", strings.Repeat("y", 0x1000))
			}
			reset(100 * time.Millisecond)
			return
		default:
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Task: %s\r\nContent-Length: 20\r\n\r\nCustomer Application", id)
		}
	}
}

// TestHealthServerDiesWithRequest is the race a SIGKILL under load loses
// now and then, made certain: a server that reads each request on a new
// connection and dies with it (reset, no answer). A GET is sent again to
// the other server and succeeds; a POST is not replayed and gets 502.
// Checks are off, so passive ejection leaves the dying server in place.
func TestHealthServerDiesWithRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	seen := map[string]int{} // method -> requests the dying server read
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
				mu.Lock()
				seen[req.Method]++
				mu.Unlock()
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}()
	good := startModalBackends(t, 1)[0]
	cfg, port, _ := healthPool(t, []string{ln.Addr().String(), good.addr}, "no-check", nil)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1")
	client := &http.Client{Timeout: 5 * time.Second}
	post502 := 0
	for i := range 6 {
		method := "GET"
		if i >= 4 {
			method = "POST"
		}
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("x")
		}
		req, _ := http.NewRequest(method, "http://"+addr+"/", body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		switch {
		case method == "GET" && resp.StatusCode != 200:
			t.Errorf("GET %d: status %d, want 200 from the other server", i, resp.StatusCode)
		case resp.StatusCode == 502:
			post502++
		case resp.StatusCode != 200:
			t.Errorf("POST: status %d", resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["GET"] == 0 || seen["POST"] != post502 {
		t.Errorf("dying server read %v; %d POSTs got 502: want GETs retried elsewhere and only POSTs it read to fail", seen, post502)
	}
	t.Logf("dying server read %v; every GET got 200, %d POST(s) 502", seen, post502)
}

// TestHealthAllDown: every backend goes away. GETs never hang: once the
// servers are marked DOWN each gets edgeproxy's 503 at once, and the stats
// CSV shows every server and the backend DOWN.
func TestHealthAllDown(t *testing.T) {
	bs := startModalBackends(t, 4)
	addrs := modalAddrs(bs)
	cfg, port, statsPort := healthPool(t, addrs, hcCheck, nil)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	startProxy(t, addr, "run", "--config", cfg, "--bind-address", "127.0.0.1")
	waitStats(t, statsPort, 5*time.Second, "all four checked UP", allChecked(addrs))
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func() (int, string, time.Duration) {
		t.Helper()
		start := time.Now()
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("GET: %v after %v", err, time.Since(start))
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET body: %v", err)
		}
		return resp.StatusCode, string(body), time.Since(start)
	}
	if code, _, _ := get(); code != 200 {
		t.Fatalf("before: %d", code)
	}

	for _, b := range bs {
		b.srv.Close()
	}
	gone := time.Now()
	// Until every server is marked DOWN, GETs still try them.
	var during []string
	allDown := func(rows map[string]map[string]string) bool {
		for _, a := range addrs {
			if rows[serverName(a)]["status"] != "DOWN" {
				return false
			}
		}
		return true
	}
	var downAt time.Time
	for deadline := gone.Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if allDown(statsRows(t, statsPort)) {
			downAt = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every server DOWN after 3 s: %v", statsRows(t, statsPort))
		}
		code, _, took := get()
		during = append(during, fmt.Sprintf("%d in %v", code, took.Round(time.Microsecond)))
		if (code != 502 && code != 503) || took > time.Second {
			t.Errorf("while the servers went down: %d after %v", code, took)
		}
	}
	var slowest time.Duration
	for range 10 {
		code, body, took := get()
		slowest = max(slowest, took)
		if code != 503 || body != "503 Service Unavailable\n" {
			t.Errorf("all servers DOWN: %d %q", code, body)
		}
	}
	if slowest > 200*time.Millisecond {
		t.Errorf("a 503 took %v", slowest)
	}
	rows := statsRows(t, statsPort)
	for _, a := range addrs {
		if r := rows[serverName(a)]; r["status"] != "DOWN" {
			t.Errorf("server %s: status %q", a, r["status"])
		}
	}
	if rows["BACKEND"]["status"] != "DOWN" {
		t.Errorf("BACKEND status %q", rows["BACKEND"]["status"])
	}
	t.Logf("all DOWN %v after the servers went away; GETs meanwhile: %v; then 503s, slowest %v",
		downAt.Sub(gone), during, slowest)
}

// stateChange finds edgeproxy's log line for server addr turning to state
// to after since, waiting up to a second for it, and describes it for the
// test log: when, relative to since, and the last check result then (a
// passed check on a change to DOWN means live traffic ejected the server).
func stateChange(p *proc, addr, to string, since time.Time) string {
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(p.output(), "\n") {
			var e struct {
				Time                   time.Time
				Msg, Server, To, Check string
			}
			if json.Unmarshal([]byte(line), &e) != nil || e.Msg != "server state changed" || e.Server != addr || e.To != to || e.Time.Before(since) {
				continue
			}
			return fmt.Sprintf("logged %s %v after, last check %s", to, e.Time.Sub(since).Round(time.Millisecond), e.Check)
		}
	}
	return "no change to " + to + " logged"
}
