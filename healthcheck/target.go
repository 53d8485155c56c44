package healthcheck

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// WeightScale is the weight factor of a Target at full weight; see
// [Target.WeightFactor].
const WeightScale = 1 << 16

// The state word packs everything Up needs, so the request path reads one
// atomic value. A Target takes traffic when no bit of noTraffic is set.
const (
	bitChecking     uint32 = 1 << 0 // check part: no result yet
	bitCheckDown    uint32 = 1 << 1 // check part: Down
	bitMarathonDown uint32 = 1 << 2 // Marathon says unhealthy
	bitDraining     uint32 = 1 << 3 // draining

	noTraffic = bitCheckDown | bitMarathonDown | bitDraining
)

func checkState(w uint32) State {
	switch {
	case w&bitCheckDown != 0:
		return StateDown
	case w&bitChecking != 0:
		return StateChecking
	}
	return StateUp
}

func effectiveState(w uint32) State {
	switch {
	case w&(bitCheckDown|bitMarathonDown) != 0:
		return StateDown
	case w&bitDraining != 0:
		return StateDraining
	}
	return checkState(w)
}

// cause says what made a Target change state, for the log line.
type cause uint8

const (
	causeCheck cause = iota
	causePassive
	causeMarathon
	causeDrain
)

// change is one effective state transition waiting to be reported.
type change struct {
	from, to State
	cause    cause
	res      Result
	code     int
	err      error
	took     time.Duration
	streak   int // consecutive results that caused it
}

// Target is one endpoint under check. Create it with [Checker.Add]; all
// methods are safe for concurrent use.
type Target struct {
	c         *Checker
	addr      string
	checkAddr string
	cfg       Config
	req       []byte // rendered HTTP check request; nil for TCP checks
	limit     int32  // passive error limit; 0 turns passive ejection off
	// sock is not nil when the Checker's prober runs the checks (TCP
	// checks on Linux; see prober_linux.go). It is set in Add; what it
	// points to belongs to the prober's loop.
	sock *sockProbe

	word         atomic.Uint32 // see bitChecking and friends
	passive      atomic.Int32  // consecutive passive failures
	passiveTotal atomic.Uint64
	rampFrom     atomic.Int64 // Unix ns when slow start began; 0 = not ramping

	// Used only by the one check in flight on the net.Dialer path.
	ctx    context.Context
	cancel context.CancelFunc
	dialer net.Dialer
	buf    [128]byte

	mu         sync.Mutex
	timer      *time.Timer // nil when the prober schedules the checks
	removed    bool
	inFlight   bool // net.Dialer path only
	delivering bool
	fastNext   bool     // passive ejection: next check after FastInter
	conn       net.Conn // connection of an HTTP check in flight, for Remove
	pending    []change
	succ       int // consecutive passed checks while Down
	fails      int // consecutive failed checks while Up
	last       Result
	lastCode   int
	lastErr    error
	lastDur    time.Duration
	lastAt     time.Time
	lastChange time.Time
	downSince  time.Time
	downtime   time.Duration
	checks     uint64
	checkFails uint64
	downs      uint64
	ejections  uint64
}

// Up reports whether the Target may take new traffic: its check part is
// not Down, Marathon says healthy, and it is not draining. It is one atomic
// load.
func (t *Target) Up() bool { return t.word.Load()&noTraffic == 0 }

// State returns the effective state.
func (t *Target) State() State { return effectiveState(t.word.Load()) }

// Addr returns the endpoint address given to Add.
func (t *Target) Addr() string { return t.addr }

// Config returns the configuration in use, defaults filled in.
func (t *Target) Config() Config {
	cfg := t.cfg
	if cfg.HTTP != nil {
		h := *cfg.HTTP
		cfg.HTTP = &h
	}
	return cfg
}

// WeightFactor returns the share of its configured weight the Target
// should get at now (Unix nanoseconds, from the same clock as
// Options.Now): 0 when it is not Up, WeightScale at full weight, and
// between 1 and WeightScale during the slow-start ramp. Use
// [EffectiveWeight] to apply it.
func (t *Target) WeightFactor(now int64) uint32 {
	if t.word.Load()&noTraffic != 0 {
		return 0
	}
	from := t.rampFrom.Load()
	if from == 0 {
		return WeightScale
	}
	span := int64(t.cfg.SlowStart)
	el := now - from
	switch {
	case el >= span || el < -span: // ramp over, or the clock stepped back
		return WeightScale
	case el <= 0:
		return 1
	}
	// el < span <= MaxSlowStart, so el*WeightScale fits in 63 bits.
	f := uint32(el * WeightScale / span)
	if f == 0 {
		f = 1
	}
	return f
}

// EffectiveWeight scales weight by factor (from WeightFactor), rounding
// up so that a Target in slow start with a non-zero factor keeps at least
// weight 1.
func EffectiveWeight(weight, factor uint32) uint32 {
	return uint32((uint64(weight)*uint64(factor) + WeightScale - 1) / WeightScale)
}

// ReportFailure records a connection failure seen on live traffic
// (refused, reset, connect timeout). ErrorLimit consecutive failures mark
// the Target Down at once. It does nothing when checks are disabled or
// ErrorLimit is negative: without active checks nothing would bring the
// Target back.
func (t *Target) ReportFailure() {
	if t.limit == 0 {
		return
	}
	t.passiveTotal.Add(1)
	if t.passive.Add(1) == t.limit {
		t.eject()
	}
}

// ReportSuccess records a successful exchange on live traffic; it resets
// the consecutive failure count. It writes only when the count is not 0.
func (t *Target) ReportSuccess() {
	if t.passive.Load() != 0 {
		t.passive.Store(0)
	}
}

// SetMarathonHealthy records Marathon's own health of the task. A new
// Target starts healthy.
func (t *Target) SetMarathonHealthy(healthy bool) {
	t.setFlag(bitMarathonDown, !healthy, causeMarathon)
}

// SetDraining marks the Target draining (no new traffic) or not.
func (t *Target) SetDraining(draining bool) {
	t.setFlag(bitDraining, draining, causeDrain)
}

func (t *Target) setFlag(bit uint32, on bool, why cause) {
	if (t.word.Load()&bit != 0) == on {
		return // unchanged: discovery repeats itself on every resync
	}
	now := t.c.now()
	t.mu.Lock()
	w := t.word.Load()
	if on {
		w |= bit
	} else {
		w &^= bit
	}
	t.setWord(w, now, change{cause: why})
	deliver := t.claimDelivery()
	t.mu.Unlock()
	if deliver {
		t.deliver()
	}
}

// eject marks the Target Down after ErrorLimit passive failures and brings
// the next check forward to FastInter.
func (t *Target) eject() {
	now := t.c.now()
	t.mu.Lock()
	t.passive.Store(0)
	w := t.word.Load()
	if t.removed || w&bitCheckDown != 0 {
		t.mu.Unlock()
		return
	}
	t.ejections++
	t.succ, t.fails = 0, 0
	t.fastNext = true
	t.setWord(w&^bitChecking|bitCheckDown, now, change{cause: causePassive, streak: int(t.limit)})
	switch d := align(t.c.spread(t.cfg.FastInter), t.cfg.FastInter); {
	case t.sock != nil:
		t.c.prober.hurry(t, d) // ignored while a check is in flight, as below
	case !t.inFlight && t.timer != nil:
		t.timer.Reset(d)
	}
	deliver := t.claimDelivery()
	t.mu.Unlock()
	if deliver {
		t.deliver()
	}
}

// record applies the result of one active check. t.mu is held.
func (t *Target) record(res Result, code int, err error, took time.Duration, now time.Time) {
	t.checks++
	t.fastNext = false
	t.last, t.lastCode, t.lastErr, t.lastDur, t.lastAt = res, code, err, took, now
	w := t.word.Load()
	ch := change{cause: causeCheck, res: res, code: code, err: err, took: took, streak: 1}
	if res.OK() {
		t.fails = 0
		switch {
		case w&bitChecking != 0:
			w &^= bitChecking
		case w&bitCheckDown != 0:
			t.succ++
			if t.succ >= t.cfg.Rise {
				ch.streak = t.succ
				w &^= bitCheckDown
				t.succ = 0
				t.passive.Store(0)
			}
		}
	} else {
		// HAProxy counts a failed check (chkfail) only while the server
		// has health left to lose: Up (going down or not), or Down on its
		// way up. A failure while Down with no success since changes
		// nothing and is not counted.
		if w&bitCheckDown == 0 || t.succ > 0 {
			t.checkFails++
		}
		t.succ = 0
		switch {
		case w&bitChecking != 0:
			w = w&^bitChecking | bitCheckDown
		case w&bitCheckDown == 0:
			t.fails++
			if t.fails >= t.cfg.Fall {
				ch.streak = t.fails
				w |= bitCheckDown
				t.fails = 0
			}
		}
	}
	t.setWord(w, now, ch)
	if from := t.rampFrom.Load(); from != 0 && now.UnixNano()-from >= int64(t.cfg.SlowStart) {
		t.rampFrom.Store(0) // ramp over: keep WeightFactor on its fast path
	}
}

// interval returns the delay before the next check. t.mu is held.
func (t *Target) interval() time.Duration {
	if t.fastNext {
		return t.cfg.FastInter
	}
	return nextInterval(&t.cfg, t.word.Load(), t.succ, t.fails)
}

// nextInterval picks HAProxy's inter, fastinter or downinter.
func nextInterval(cfg *Config, w uint32, succ, fails int) time.Duration {
	switch {
	case w&bitCheckDown != 0 && succ == 0:
		return cfg.DownInter
	case w&bitCheckDown != 0, fails > 0:
		return cfg.FastInter
	}
	return cfg.Inter
}

// setWord publishes a new state word and queues the effective transition,
// if any, for OnChange and the log. t.mu is held.
func (t *Target) setWord(w uint32, now time.Time, ch change) {
	old := t.word.Load()
	if old == w {
		return
	}
	t.word.Store(w)
	wasUp, isUp := old&noTraffic == 0, w&noTraffic == 0
	if t.cfg.SlowStart > 0 && wasUp != isUp {
		if isUp {
			t.rampFrom.Store(max(now.UnixNano(), 1))
		} else {
			t.rampFrom.Store(0)
		}
	}
	from, to := effectiveState(old), effectiveState(w)
	if from == to {
		return
	}
	t.lastChange = now
	if to == StateDown {
		t.downs++
		t.downSince = now
	}
	if from == StateDown {
		t.downtime += now.Sub(t.downSince)
	}
	if t.c.notify {
		ch.from, ch.to = from, to
		t.pending = append(t.pending, ch)
	}
}

// claimDelivery makes the caller the one goroutine that reports pending
// transitions, in order, after it drops t.mu. t.mu is held.
func (t *Target) claimDelivery() bool {
	if t.delivering || len(t.pending) == 0 {
		return false
	}
	t.delivering = true
	return true
}

// deliver reports pending transitions without holding t.mu, so OnChange
// may call any method of the Target. Transitions of a removed Target are
// dropped.
func (t *Target) deliver() {
	for {
		t.mu.Lock()
		if len(t.pending) == 0 || t.removed {
			t.pending = t.pending[:0]
			t.delivering = false
			t.mu.Unlock()
			return
		}
		ch := t.pending[0]
		n := copy(t.pending, t.pending[1:])
		t.pending = t.pending[:n]
		t.mu.Unlock()
		t.c.report(t, ch)
	}
}

// Snapshot returns a consistent copy of the Target's state.
func (t *Target) Snapshot() TargetStatus {
	now := t.c.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.word.Load()
	s := TargetStatus{
		Addr:            t.addr,
		CheckAddr:       t.checkAddr,
		State:           effectiveState(w),
		Check:           checkState(w),
		CheckEnabled:    t.cfg.Enabled,
		MarathonHealthy: w&bitMarathonDown == 0,
		Draining:        w&bitDraining != 0,
		Rise:            t.cfg.Rise,
		Fall:            t.cfg.Fall,
		Successes:       t.succ,
		Failures:        t.fails,
		LastResult:      t.last,
		LastCode:        t.lastCode,
		LastErr:         t.lastErr,
		LastDuration:    t.lastDur,
		LastCheck:       t.lastAt,
		LastChange:      t.lastChange,
		Checks:          t.checks,
		CheckFailures:   t.checkFails,
		Downs:           t.downs,
		Downtime:        t.downtime,
		PassiveFailures: t.passiveTotal.Load(),
		Ejections:       t.ejections,
		Weight:          t.WeightFactor(now.UnixNano()),
	}
	if s.State == StateDown {
		s.Downtime += now.Sub(t.downSince)
	}
	return s
}
