package healthcheck

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Defaults of Options.
const (
	// DefaultMaxConcurrent bounds the checks in flight. It is large enough
	// for 1,000 black-holed endpoints at inter 2s to be checked on time.
	DefaultMaxConcurrent = 1024
	// DefaultSpreadPercent is the random spread of each check interval,
	// matching `spread-checks 5` in the Edge-LB HAProxy template.
	DefaultSpreadPercent = 5
)

// Options configures a Checker. Every field is optional.
type Options struct {
	// Logf logs state transitions, one line each. nil means no logging.
	Logf func(format string, args ...any)
	// Now is the clock for timestamps and slow start. nil means time.Now.
	// Check scheduling always uses real timers.
	Now func() time.Time
	// OnChange is called after each change of a Target's effective state,
	// in order per Target, on whichever goroutine caused it (a check, a
	// ReportFailure caller, a SetDraining caller). It may call any method
	// of the Target; it should return quickly. It is not called for
	// changes after Remove. Changes caused by TCP checks on Linux are
	// reported on the Checker's hook goroutine (see OnCheck).
	OnChange func(t *Target, from, to State)
	// OnCheck is called after each active check with its result and how
	// long it took, for metrics. It runs on the check goroutine; for TCP
	// checks on Linux, on one hook goroutine per Checker that calls the
	// hooks of all its TCP checks in the order the checks ended, so a
	// slow hook delays later hooks but no check. If hooks fall 65,536
	// checks behind, OnCheck calls are dropped (OnChange calls never are).
	OnCheck func(t *Target, r Result, took time.Duration)
	// MaxConcurrent bounds the checks in flight across all Targets; a
	// check beyond it waits for a slot. 0 means DefaultMaxConcurrent.
	MaxConcurrent int
	// SpreadPercent randomises every check interval by up to plus or minus
	// this percentage (HAProxy spread-checks, at most 50). 0 means
	// DefaultSpreadPercent; negative means none.
	SpreadPercent int
}

// Checker schedules and runs the checks of a set of Targets.
type Checker struct {
	logf      func(string, ...any)
	now       func() time.Time
	onChange  func(*Target, State, State)
	onCheck   func(*Target, Result, time.Duration)
	notify    bool           // someone listens to transitions
	spreadPct int64          // 0 = no spread
	sem       chan struct{}  // one slot per check in flight
	work      chan *Target   // hands a check to an idle worker
	done      chan struct{}  // closed by Close: workers exit
	wg        sync.WaitGroup // checks in flight
	workers   sync.WaitGroup
	prober    *prober // runs TCP checks without net.Dialer; nil where unsupported
	goDial    bool    // tests: run every check through net.Dialer
	epollOnly bool    // tests: the prober waits in epoll for every connect

	mu      sync.Mutex
	closed  bool
	targets map[*Target]struct{}
}

// NewChecker returns a Checker with no Targets. It starts no goroutine.
// Call Close when done with it.
func NewChecker(opts Options) *Checker {
	c := &Checker{
		logf:     opts.Logf,
		now:      opts.Now,
		onChange: opts.OnChange,
		onCheck:  opts.OnCheck,
		targets:  make(map[*Target]struct{}),
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.notify = c.logf != nil || c.onChange != nil
	n := opts.MaxConcurrent
	if n <= 0 {
		n = DefaultMaxConcurrent
	}
	c.sem = make(chan struct{}, n)
	c.work = make(chan *Target)
	c.done = make(chan struct{})
	c.prober = newProber(c)
	switch p := opts.SpreadPercent; {
	case p == 0:
		c.spreadPct = DefaultSpreadPercent
	case p > 0:
		c.spreadPct = int64(min(p, 50))
	}
	return c
}

// Add starts checking addr (host:port) with cfg. Its first check runs
// after a random delay within Inter, so Targets added together are
// checked spread over the interval. The Target starts Checking (it takes
// traffic), Marathon-healthy and not draining; with checks disabled its
// check part is Up for good.
func (c *Checker) Add(addr string, cfg Config) (*Target, error) {
	t, err := c.newTarget(addr, cfg)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		if t.cancel != nil {
			t.cancel()
		}
		return nil, ErrClosed
	}
	c.targets[t] = struct{}{}
	if !t.cfg.Enabled {
		return t, nil
	}
	first := align(rand.N(t.cfg.Inter), t.cfg.Inter)
	if t.cfg.HTTP == nil && !c.goDial {
		if t.sock = newSockProbe(t.checkAddr, c.epollOnly); t.sock != nil && !c.prober.add(t, first) {
			t.sock = nil // the prober could not start: fall back to net.Dialer
		}
	}
	if t.sock == nil {
		t.mu.Lock() // the timer may fire before AfterFunc returns
		t.timer = time.AfterFunc(first, t.fire)
		t.mu.Unlock()
	}
	return t, nil
}

// newTarget builds a Target without scheduling its checks.
func (c *Checker) newTarget(addr string, cfg Config) (*Target, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	checkAddr, err := checkAddress(addr, cfg.Port)
	if err != nil {
		return nil, err
	}
	t := &Target{c: c, addr: addr, checkAddr: checkAddr, cfg: cfg, lastChange: c.now()}
	if cfg.Enabled {
		t.word.Store(bitChecking)
		if cfg.ErrorLimit > 0 {
			t.limit = int32(min(cfg.ErrorLimit, math.MaxInt32))
		}
		if cfg.HTTP != nil {
			t.req = buildRequest(cfg.HTTP, checkAddr)
		}
		t.ctx, t.cancel = context.WithCancel(context.Background())
		t.dialer.KeepAlive = -1 // check connections live for one exchange
	}
	return t, nil
}

// Remove stops checking t: no check starts after Remove returns and a
// check in flight is aborted. t keeps answering Up with its last state.
func (c *Checker) Remove(t *Target) {
	if t == nil || t.c != c {
		return
	}
	c.mu.Lock()
	delete(c.targets, t)
	c.mu.Unlock()
	t.stop()
}

// Close stops every check and waits for the checks in flight to end.
// Add fails after Close.
func (c *Checker) Close() {
	c.mu.Lock()
	ts := make([]*Target, 0, len(c.targets))
	for t := range c.targets {
		ts = append(ts, t)
	}
	wasClosed := c.closed
	c.closed = true
	clear(c.targets)
	c.mu.Unlock()
	for _, t := range ts {
		t.stop()
	}
	c.wg.Wait()
	c.prober.close()
	if !wasClosed {
		close(c.done)
	}
	c.workers.Wait()
}

// Targets returns the Targets being checked, sorted by address.
func (c *Checker) Targets() []*Target {
	c.mu.Lock()
	ts := make([]*Target, 0, len(c.targets))
	for t := range c.targets {
		ts = append(ts, t)
	}
	c.mu.Unlock()
	slices.SortFunc(ts, func(a, b *Target) int { return cmp.Compare(a.addr, b.addr) })
	return ts
}

func (t *Target) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.removed {
		return
	}
	t.removed = true
	if t.sock != nil {
		t.c.prober.remove(t) // aborts a check in flight
	}
	if t.timer != nil {
		t.timer.Stop()
	}
	if t.cancel != nil {
		t.cancel()
	}
	if t.conn != nil {
		t.conn.Close()
	}
}

// report logs a transition and calls OnChange.
func (c *Checker) report(t *Target, ch change) {
	if c.logf != nil {
		c.logf("healthcheck: %s is %s (was %s): %s", t.addr, ch.to, ch.from, describe(ch))
	}
	if c.onChange != nil {
		c.onChange(t, ch.from, ch.to)
	}
}

func describe(ch change) string {
	switch ch.cause {
	case causePassive:
		return fmt.Sprintf("%d consecutive failures on live traffic", ch.streak)
	case causeMarathon:
		if ch.to == StateDown {
			return "marathon reports the task unhealthy"
		}
		return "marathon reports the task healthy"
	case causeDrain:
		if ch.to == StateDraining {
			return "draining"
		}
		return "draining ended"
	}
	s := fmt.Sprintf("check %s", ch.res)
	if ch.code != 0 {
		s += fmt.Sprintf(" status %d", ch.code)
	}
	if ch.err != nil {
		s += fmt.Sprintf(" (%v)", ch.err)
	}
	return s + fmt.Sprintf(", %d in a row, took %v", ch.streak, ch.took.Round(time.Microsecond))
}
