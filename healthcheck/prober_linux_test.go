//go:build linux

package healthcheck

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Every test here runs the Linux prober; those that compare it with the
// net.Dialer path run another Checker with goDial set. On loopback the
// prober finishes nearly every connect at once; with epollOnly it waits
// for each in epoll, as it does on a real network.

// fullListener returns the address of a loopback listener with a backlog
// of 0 and its one queued connection never accepted: the kernel drops
// every further SYN, so a connect to it times out.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 10 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return addr // the queue is full
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("%s still accepts connections with a backlog of 0", addr)
	return ""
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T, network, host string) string {
	t.Helper()
	ln, err := net.Listen(network, net.JoinHostPort(host, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", host, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// openFds returns the number of open descriptors of this process and how
// many of them are sockets.
func openFds(t *testing.T) (all, sockets int) {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			sockets++
		}
	}
	return len(ents), sockets
}

// firstCheck adds addr to c and waits for the result of its first check.
func firstCheck(t *testing.T, c *Checker, addr string, cfg Config) TargetStatus {
	t.Helper()
	tg := mustAdd(t, c, addr, cfg)
	waitFor(t, 5*time.Second, "first check of "+addr, func() bool { return tg.Snapshot().Checks >= 1 })
	return tg.Snapshot()
}

func TestProberIsUsedForTCPChecks(t *testing.T) {
	b := newBackend(t, modeClose)
	c := newChecker(t, Options{})
	for _, tt := range []struct {
		addr  string
		cfg   Config
		sock  bool
		about string
	}{
		{b.addr, tcpConfig(), true, "an IPv4 address"},
		{"[::1]:80", tcpConfig(), true, "an IPv6 address"},
		{"[::ffff:127.0.0.1]:80", tcpConfig(), true, "an IPv4-mapped address"},
		{"localhost:80", tcpConfig(), false, "a host name, resolved on each check by net.Dialer"},
		{"[fe80::1%lo]:80", tcpConfig(), false, "an address with a zone"},
		{b.addr, Config{Enabled: true, HTTP: &HTTPCheck{}}, false, "an HTTP check"},
		{b.addr, Config{}, false, "checks disabled"},
	} {
		tg := mustAdd(t, c, tt.addr, tt.cfg)
		if got := tg.sock != nil; got != tt.sock {
			t.Errorf("%s (%s): prober used %v, want %v", tt.addr, tt.about, got, tt.sock)
		}
		c.Remove(tg)
	}
}

// TestProberMatchesDialer runs the same checks through both paths and
// compares results, error texts and state transitions.
func TestProberMatchesDialer(t *testing.T) {
	full := fullListener(t)
	up := newBackend(t, modeClose)
	tests := []struct {
		name string
		addr string
		want Result
		err  string // the error text, with ADDR for the address
		is   error
	}{
		{"accepts", up.addr, ResultL4OK, "", nil},
		{"refused", closedPort(t, "tcp4", "127.0.0.1"), ResultL4Conn, "dial tcp ADDR: connect: connection refused", syscall.ECONNREFUSED},
		{"refused IPv6", closedPort(t, "tcp6", "::1"), ResultL4Conn, "dial tcp ADDR: connect: connection refused", syscall.ECONNREFUSED},
		// net.Dialer returns os.ErrDeadlineExceeded or an error that is
		// context.DeadlineExceeded, whichever deadline fires first.
		{"times out", full, ResultL4Timeout, "dial tcp ADDR: i/o timeout", nil},
	}
	cfg := tcpConfig()
	cfg.Timeout = 50 * time.Millisecond
	paths := []string{"net.Dialer", "prober", "prober through epoll"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]TargetStatus, len(paths))
			for i := range paths {
				c := newChecker(t, Options{})
				c.goDial, c.epollOnly = i == 0, i == 2
				got[i] = firstCheck(t, c, tt.addr, cfg)
			}
			for i, s := range got {
				path := paths[i]
				errText := ""
				if s.LastErr != nil {
					errText = s.LastErr.Error()
				}
				if want := strings.ReplaceAll(tt.err, "ADDR", tt.addr); s.LastResult != tt.want || errText != want {
					t.Errorf("%s: %v %q, want %v %q", path, s.LastResult, errText, tt.want, want)
				}
				if tt.is != nil && !errors.Is(s.LastErr, tt.is) {
					t.Errorf("%s: %v is not %v", path, s.LastErr, tt.is)
				}
				if tt.want == ResultL4Timeout && (!isTimeout(s.LastErr) || i > 0 && !errors.Is(s.LastErr, os.ErrDeadlineExceeded)) {
					t.Errorf("%s: %v is not a timeout", path, s.LastErr)
				}
				if tt.want == ResultL4Timeout && s.LastDuration < cfg.Timeout {
					t.Errorf("%s: timed out after %v, before the %v timeout", path, s.LastDuration, cfg.Timeout)
				}
			}
			for i, p := range got[1:] {
				d := got[0]
				if p.State != d.State || p.Check != d.Check || p.Checks != d.Checks || p.CheckFailures != d.CheckFailures || p.Downs != d.Downs {
					t.Errorf("%s %v/%v checks %d fails %d downs %d; net.Dialer %v/%v checks %d fails %d downs %d", paths[i+1],
						p.State, p.Check, p.Checks, p.CheckFailures, p.Downs, d.State, d.Check, d.Checks, d.CheckFailures, d.Downs)
				}
			}
		})
	}
}

func TestProberTransitionsMatchDialer(t *testing.T) {
	b := newBackend(t, modeClose)
	paths := []string{"net.Dialer", "prober", "prober through epoll"}
	var trs [3]transitions
	var rss [3]results
	for i := range paths {
		c := newChecker(t, Options{OnChange: trs[i].onChange, OnCheck: rss[i].onCheck})
		c.goDial, c.epollOnly = i == 0, i == 2
		if tg := mustAdd(t, c, b.addr, tcpConfig()); (tg.sock != nil) != (i > 0) {
			t.Fatalf("%s: prober used %v", paths[i], tg.sock != nil)
		}
	}
	all := func(what string, n int) {
		t.Helper()
		waitFor(t, 5*time.Second, what, func() bool {
			return trs[0].len() >= n && trs[1].len() >= n && trs[2].len() >= n
		})
	}
	all("CHECKING>UP", 1)
	b.down()
	all("UP>DOWN", 2)
	b.up()
	all("DOWN>UP", 3)
	for i, path := range paths {
		tr, rs := &trs[i], &rss[i]
		if got, want := tr.list(), "CHECKING>UP UP>DOWN DOWN>UP"; got != want {
			t.Errorf("%s: transitions %q, want %q", path, got, want)
		}
		down, up := tr.at(1), tr.at(2)
		if down.CheckFailures != 3 || down.LastResult != ResultL4Conn || down.Downs != 1 {
			t.Errorf("%s: down after %d failures, result %v, downs %d; want 3, L4CON, 1", path, down.CheckFailures, down.LastResult, down.Downs)
		}
		if n := rs.passed(down, up); n != 2 {
			t.Errorf("%s: up after %d passed checks, want rise = 2", path, n)
		}
	}
}

func TestProberRemoveWhileInFlight(t *testing.T) {
	full := fullListener(t)
	var checks atomic.Int32
	c := newChecker(t, Options{OnCheck: func(*Target, Result, time.Duration) { checks.Add(1) }})
	cfg := tcpConfig()
	cfg.Timeout = time.Minute
	_, base := openFds(t)
	tg := mustAdd(t, c, full, cfg)
	waitFor(t, 5*time.Second, "a connect in flight", func() bool { _, s := openFds(t); return s > base })
	c.Remove(tg)
	waitFor(t, 5*time.Second, "the socket closed", func() bool { _, s := openFds(t); return s == base })
	time.Sleep(50 * time.Millisecond)
	if s := tg.Snapshot(); s.Checks != 0 || checks.Load() != 0 {
		t.Errorf("the aborted check was recorded: %d checks, %d OnCheck calls", s.Checks, checks.Load())
	}
	if !tg.Up() || tg.State() != StateChecking {
		t.Errorf("removed Target: Up %v, state %v; want its last state, CHECKING", tg.Up(), tg.State())
	}
}

func TestProberCloseWithChecksInFlight(t *testing.T) {
	full := fullListener(t)
	before, base := openFds(t)
	c := NewChecker(Options{Logf: t.Logf})
	cfg := tcpConfig()
	cfg.Timeout = time.Minute
	for range 5 {
		mustAdd(t, c, full, cfg)
	}
	waitFor(t, 5*time.Second, "5 connects in flight", func() bool { _, s := openFds(t); return s == base+5 })
	start := time.Now()
	c.Close()
	if took := time.Since(start); took > time.Second {
		t.Errorf("Close took %v", took)
	}
	if after, _ := openFds(t); after != before {
		t.Errorf("%d descriptors open after Close, %d before the Checker", after, before)
	}
	checkGoroutinesExit(t)
}

func TestProberExitsWhenIdleAndRestarts(t *testing.T) {
	b := newBackend(t, modeClose)
	before, _ := openFds(t)
	var checks atomic.Int32
	c := newChecker(t, Options{OnCheck: func(*Target, Result, time.Duration) { checks.Add(1) }})
	c.prober.idle = 20 * time.Millisecond
	for round := range 2 {
		tg := mustAdd(t, c, b.addr, tcpConfig())
		waitFor(t, 5*time.Second, "a check", func() bool { return checks.Load() > int32(round) })
		if g := checkGoroutines(); g != 2 {
			t.Fatalf("round %d: %d checker goroutines, want the loop and its hook runner", round, g)
		}
		c.Remove(tg)
		waitFor(t, 5*time.Second, "the loop to exit", func() bool { return checkGoroutines() == 0 })
		if after, _ := openFds(t); after != before {
			t.Fatalf("round %d: %d descriptors open after the loop exited, %d before", round, after, before)
		}
	}
}

func TestProberMaxConcurrent(t *testing.T) {
	full := fullListener(t)
	var checks atomic.Int32
	c := newChecker(t, Options{MaxConcurrent: 2, OnCheck: func(*Target, Result, time.Duration) { checks.Add(1) }})
	cfg := tcpConfig()
	cfg.Timeout = 60 * time.Millisecond
	for range 6 {
		mustAdd(t, c, full, cfg)
	}
	peak := 0
	for deadline := time.Now().Add(600 * time.Millisecond); time.Now().Before(deadline); {
		peak = max(peak, len(c.sem))
		time.Sleep(time.Millisecond)
	}
	if peak < 1 || peak > 2 {
		t.Errorf("at most %d checks in flight at once, want 1 or 2 (MaxConcurrent)", peak)
	}
	// Six 60ms checks two at a time: every Target gets checked anyway.
	if n := checks.Load(); n < 6 {
		t.Errorf("%d checks in 600ms, want every one of the 6 Targets checked", n)
	}
}

// A hook that does not return delays other hooks, not checks.
func TestProberHookDoesNotStallChecks(t *testing.T) {
	b := newBackend(t, modeClose)
	release := make(chan struct{})
	var once sync.Once
	c := newChecker(t, Options{OnCheck: func(*Target, Result, time.Duration) {
		once.Do(func() { <-release })
	}})
	defer close(release) // before Close, which waits for the hooks
	tgs := make([]*Target, 5)
	for i := range tgs {
		tgs[i] = mustAdd(t, c, b.addr, tcpConfig())
	}
	waitFor(t, 5*time.Second, "10 checks of every Target with OnCheck stuck", func() bool {
		for _, tg := range tgs {
			if tg.Snapshot().Checks < 10 {
				return false
			}
		}
		return true
	})
}

func TestProberPassiveEjectionHurriesCheck(t *testing.T) {
	b := newBackend(t, modeClose)
	var tr transitions
	c := newChecker(t, Options{OnChange: tr.onChange})
	cfg := tcpConfig()
	cfg.Inter = 10 * time.Second
	cfg.FastInter = 20 * time.Millisecond
	cfg.Rise = 1
	tg := mustAdd(t, c, b.addr, cfg)
	// The first check comes within inter; eject before it and after it.
	for range 3 {
		tg.ReportFailure()
	}
	// OnChange runs a moment after Up changes, on the hook goroutine.
	waitFor(t, 2*time.Second, "back up at fastinter", func() bool { return tr.len() >= 2 })
	for range 3 {
		tg.ReportFailure()
	}
	waitFor(t, 2*time.Second, "back up after the second ejection", func() bool { return tr.len() >= 4 })
	if got, want := tr.list(), "CHECKING>DOWN DOWN>UP UP>DOWN DOWN>UP"; got != want {
		t.Errorf("transitions %q, want %q", got, want)
	}
}

func TestSockProbeDialDoesNotAllocate(t *testing.T) {
	b := newBackend(t, modeClose)
	s := newSockProbe(b.addr, false)
	if n := testing.AllocsPerRun(50, func() {
		for {
			fd, err := s.dial()
			if err != nil {
				t.Fatal(err)
			}
			if fd < 0 {
				return
			}
			closeFd(fd) // not done at once: try again
		}
	}); n != 0 {
		t.Errorf("a passed check allocates %v times", n)
	}
}

func TestTimerHeap(t *testing.T) {
	c := NewChecker(Options{})
	var h timerHeap
	ts := make([]*Target, 50)
	for i := range ts {
		ts[i] = &Target{c: c, sock: &sockProbe{index: -1}}
		h.set(ts[i], int64((i*37)%50))
	}
	h.set(ts[3], -1)     // to the top
	h.set(ts[0], 1000)   // to the bottom
	h.remove(ts[10])     // from the middle
	h.remove(ts[10])     // not in it
	h.set(ts[20], 20000) // again, later
	var got []int64
	for len(h) > 0 {
		for i, x := range h {
			if x.t.sock.index != i {
				t.Fatalf("index %d of a timer at %d", x.t.sock.index, i)
			}
		}
		got = append(got, h[0].at)
		h.remove(h[0].t)
	}
	if len(got) != 49 || got[0] != -1 || got[47] != 1000 || got[48] != 20000 {
		t.Fatalf("popped %v", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] < got[i-1] {
			t.Fatalf("out of order: %v", got)
		}
	}
}
