package healthcheck

import (
	"sync"
	"testing"
	"time"
)

// unscheduled returns a Target whose checks never run, so a test can
// feed it results through record.
func unscheduled(t *testing.T, c *Checker, cfg Config) *Target {
	t.Helper()
	tg, err := c.newTarget("127.0.0.1:9", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func feed(tg *Target, ok bool) {
	res := ResultL4Conn
	if ok {
		res = ResultL4OK
	}
	now := tg.c.now()
	tg.mu.Lock()
	tg.record(res, 0, nil, time.Millisecond, now)
	deliver := tg.claimDelivery()
	tg.mu.Unlock()
	if deliver {
		tg.deliver()
	}
}

func TestRiseFallStateMachine(t *testing.T) {
	tests := []struct {
		name    string
		results string // S = passed check, F = failed check
		states  string // check state after each result: C, U, D
	}{
		{"first success decides up", "S", "U"},
		{"first failure decides down", "F", "D"},
		{"fall consecutive failures", "SFFF", "UUUD"},
		{"a success resets the failures", "SFFSFFSFFF", "UUUUUUUUUD"},
		{"rise consecutive successes", "FSS", "DDU"},
		{"a failure resets the successes", "FSFSFSS", "DDDDDDU"},
		{"down and back", "SFFFSSFFF", "UUUDDUUUD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr transitions
			c := newChecker(t, Options{OnChange: tr.onChange})
			tg := unscheduled(t, c, Config{Enabled: true, Rise: 2, Fall: 3})
			if tg.State() != StateChecking {
				t.Fatalf("initial state %v, want CHECKING", tg.State())
			}
			for i, r := range tt.results {
				feed(tg, r == 'S')
				want := map[byte]State{'C': StateChecking, 'U': StateUp, 'D': StateDown}[tt.states[i]]
				if got := tg.State(); got != want {
					t.Fatalf("after %q: state %v, want %v", tt.results[:i+1], got, want)
				}
				if tg.Up() != (want != StateDown) {
					t.Fatalf("after %q: Up() = %v in state %v", tt.results[:i+1], tg.Up(), want)
				}
			}
		})
	}
}

// CheckFailures is HAProxy's chkfail: a failed check counts while the
// server has health to lose (Up, or Down with successes towards Rise),
// not while it is Down and stays so: HAProxy 2.6 counts a failure only
// while the server's check health is above 0.
func TestCheckFailuresCountLikeChkfail(t *testing.T) {
	tests := []struct {
		results string // S = passed check, F = failed check
		want    uint64
	}{
		{"F", 1},          // a new server is up until its first result
		{"FFFF", 1},       // down from the first; the rest change nothing
		{"SFFF", 3},       // fall = 3 failures while up
		{"SFFFFF", 3},     // and none while down
		{"SFSFFF", 4},     // a success in between resets the streak, not the count
		{"FSF", 2},        // down, one success towards rise, failed again
		{"FSFF", 2},       // back to no health: not counted
		{"FSSF", 2},       // up again after rise = 2: counted
		{"SFFFSSFFFF", 6}, // down, up, down
	}
	for _, tt := range tests {
		c := newChecker(t, Options{})
		tg := unscheduled(t, c, Config{Enabled: true, Rise: 2, Fall: 3})
		for _, r := range tt.results {
			feed(tg, r == 'S')
		}
		s := tg.Snapshot()
		if s.CheckFailures != tt.want {
			t.Errorf("%s: CheckFailures %d, want %d", tt.results, s.CheckFailures, tt.want)
		}
		if s.Checks != uint64(len(tt.results)) {
			t.Errorf("%s: Checks %d, want %d", tt.results, s.Checks, len(tt.results))
		}
	}
}

func TestCombinationRule(t *testing.T) {
	tests := []struct {
		check                string // "none" (disabled), "checking", "up", "down"
		marathonHealthy      bool
		draining             bool
		wantUp               bool
		wantState, wantCheck State
	}{
		{"none", true, false, true, StateUp, StateUp},
		{"none", false, false, false, StateDown, StateUp},
		{"none", true, true, false, StateDraining, StateUp},
		{"checking", true, false, true, StateChecking, StateChecking},
		{"checking", false, false, false, StateDown, StateChecking},
		{"up", true, false, true, StateUp, StateUp},
		{"up", false, false, false, StateDown, StateUp},
		{"up", true, true, false, StateDraining, StateUp},
		{"up", false, true, false, StateDown, StateUp},
		{"down", true, false, false, StateDown, StateDown},
		{"down", true, true, false, StateDown, StateDown},
	}
	for _, tt := range tests {
		c := newChecker(t, Options{})
		tg := unscheduled(t, c, Config{Enabled: tt.check != "none"})
		switch tt.check {
		case "up":
			feed(tg, true)
		case "down":
			feed(tg, false)
		}
		tg.SetMarathonHealthy(tt.marathonHealthy)
		tg.SetDraining(tt.draining)
		s := tg.Snapshot()
		if tg.Up() != tt.wantUp || s.State != tt.wantState || s.Check != tt.wantCheck {
			t.Errorf("check %s, marathon healthy %v, draining %v: Up %v state %v check %v; want %v %v %v",
				tt.check, tt.marathonHealthy, tt.draining, tg.Up(), s.State, s.Check, tt.wantUp, tt.wantState, tt.wantCheck)
		}
	}
}

func TestChecksDisabled(t *testing.T) {
	c := newChecker(t, Options{})
	tg := mustAdd(t, c, "127.0.0.1:9", Config{})
	for range 10 {
		tg.ReportFailure()
	}
	s := tg.Snapshot()
	if !tg.Up() || s.State != StateUp || s.CheckEnabled || s.PassiveFailures != 0 || s.Ejections != 0 {
		t.Fatalf("disabled checks: Up %v, %+v", tg.Up(), s)
	}
	time.Sleep(20 * time.Millisecond)
	if g := checkGoroutines(); g != 0 || tg.Snapshot().Checks != 0 {
		t.Fatalf("disabled checks ran: %d goroutines, %d checks", g, tg.Snapshot().Checks)
	}
}

func TestPassiveEjectionDisabledByNegativeLimit(t *testing.T) {
	c := newChecker(t, Options{})
	tg := unscheduled(t, c, Config{Enabled: true, ErrorLimit: -1})
	feed(tg, true)
	for range 100 {
		tg.ReportFailure()
	}
	if !tg.Up() {
		t.Fatal("ErrorLimit -1 still ejected the target")
	}
}

func TestSlowStartRamp(t *testing.T) {
	const ramp = 10 * time.Second
	clock := newFakeClock()
	c := newChecker(t, Options{Now: clock.Now})
	tg := unscheduled(t, c, Config{Enabled: true, SlowStart: ramp})
	ns := func() int64 { return clock.Now().UnixNano() }

	if got := tg.WeightFactor(ns()); got != WeightScale {
		t.Fatalf("a new Target ramps: factor %d, want full %d", got, WeightScale)
	}
	feed(tg, true)
	if got := tg.WeightFactor(ns()); got != WeightScale {
		t.Fatalf("CHECKING>UP ramps: factor %d", got)
	}
	for range 3 {
		tg.ReportFailure()
	}
	if got := tg.WeightFactor(ns()); got != 0 || tg.Up() {
		t.Fatalf("ejected Target: factor %d, Up %v; want 0, false", got, tg.Up())
	}
	clock.advance(time.Minute)
	feed(tg, true)
	feed(tg, true) // rise: back up, the ramp starts now
	t0 := ns()
	for _, tt := range []struct {
		at   time.Duration
		want uint32
	}{
		{-time.Second, 1}, // a request that read its clock just before
		{0, 1},
		{ramp / 4, WeightScale / 4},
		{ramp / 2, WeightScale / 2},
		{ramp - 1, WeightScale - 1},
		{ramp, WeightScale},
		{time.Hour, WeightScale},
		{-time.Hour, WeightScale}, // the clock stepped back past the ramp
	} {
		if got := tg.WeightFactor(t0 + int64(tt.at)); got != tt.want {
			t.Errorf("factor %v into the ramp = %d, want %d", tt.at, got, tt.want)
		}
	}
	clock.advance(ramp / 2)
	if s := tg.Snapshot(); s.Weight != WeightScale/2 {
		t.Errorf("Snapshot().Weight half way = %d, want %d", s.Weight, WeightScale/2)
	}

	tg.SetMarathonHealthy(false)
	clock.advance(time.Second)
	tg.SetMarathonHealthy(true)
	if got := tg.WeightFactor(ns() + int64(ramp/4)); got != WeightScale/4 {
		t.Errorf("Marathon healthy again: factor a quarter in = %d, want %d", got, WeightScale/4)
	}
	tg.SetDraining(true)
	if got := tg.WeightFactor(ns()); got != 0 {
		t.Errorf("draining: factor %d, want 0", got)
	}
	tg.SetDraining(false)
	clock.advance(2 * ramp)
	feed(tg, true)
	if tg.rampFrom.Load() != 0 {
		t.Error("a check after the ramp did not put WeightFactor back on its fast path")
	}
}

func TestEffectiveWeight(t *testing.T) {
	for _, tt := range []struct{ weight, factor, want uint32 }{
		{10, WeightScale, 10},
		{10, WeightScale / 2, 5},
		{3, WeightScale / 2, 2},
		{10, 1, 1},
		{256, 0, 0},
		{0, WeightScale, 0},
		{1 << 31, WeightScale, 1 << 31},
	} {
		if got := EffectiveWeight(tt.weight, tt.factor); got != tt.want {
			t.Errorf("EffectiveWeight(%d, %d) = %d, want %d", tt.weight, tt.factor, got, tt.want)
		}
	}
}

func TestNextInterval(t *testing.T) {
	cfg := Config{Enabled: true, Inter: 2 * time.Second, FastInter: 500 * time.Millisecond, DownInter: 5 * time.Second}
	for _, tt := range []struct {
		name        string
		word        uint32
		succ, fails int
		want        time.Duration
	}{
		{"checking", bitChecking, 0, 0, cfg.Inter},
		{"up, steady", 0, 0, 0, cfg.Inter},
		{"up, going down", 0, 0, 1, cfg.FastInter},
		{"down, steady", bitCheckDown, 0, 0, cfg.DownInter},
		{"down, going up", bitCheckDown, 1, 0, cfg.FastInter},
		{"draining does not matter", bitDraining, 0, 0, cfg.Inter},
	} {
		if got := nextInterval(&cfg, tt.word, tt.succ, tt.fails); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSpread(t *testing.T) {
	for _, tt := range []struct {
		pct    int
		lo, hi time.Duration
	}{
		{0, 1900 * time.Millisecond, 2100 * time.Millisecond}, // default 5%
		{-1, 2 * time.Second, 2 * time.Second},
		{50, time.Second, 3 * time.Second},
		{90, time.Second, 3 * time.Second}, // capped at 50%
	} {
		c := NewChecker(Options{SpreadPercent: tt.pct})
		lo, hi := time.Hour, time.Duration(0)
		for range 2000 {
			d := c.spread(2 * time.Second)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < tt.lo || hi > tt.hi || tt.lo != tt.hi && hi-lo < (tt.hi-tt.lo)*8/10 {
			t.Errorf("spread %d%%: delays in [%v, %v], want spread over [%v, %v]", tt.pct, lo, hi, tt.lo, tt.hi)
		}
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	clock := newFakeClock()
	c := newChecker(t, Options{Now: clock.Now})
	tg := unscheduled(t, c, Config{Enabled: true, SlowStart: time.Minute, ErrorLimit: 1 << 30})
	feed(tg, false)
	feed(tg, true)
	feed(tg, true) // up again and ramping, so WeightFactor does its arithmetic
	now := clock.Now().UnixNano() + int64(time.Second)
	for name, f := range map[string]func(){
		"Up":            func() { _ = tg.Up() },
		"ReportSuccess": tg.ReportSuccess,
		"ReportFailure": tg.ReportFailure,
		"WeightFactor":  func() { _ = tg.WeightFactor(now) },
		"State":         func() { _ = tg.State() },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
	if f := tg.WeightFactor(now); f == 0 || f == WeightScale {
		t.Errorf("factor %d: the test meant to measure the ramp", f)
	}
}

func TestConcurrentUse(t *testing.T) {
	b := newBackend(t, modeClose)
	c := newChecker(t, Options{OnChange: func(tg *Target, _, _ State) { _ = tg.Snapshot() }})
	tg := mustAdd(t, c, b.addr, tcpConfig())
	const workers, calls = 4, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				tg.ReportFailure()
				if i%7 == 0 {
					tg.ReportSuccess()
				}
				_ = tg.Up()
				_ = tg.WeightFactor(time.Now().UnixNano())
				if i%100 == 0 {
					tg.SetDraining(w == 0 && i%200 == 0)
					tg.SetMarathonHealthy(i%300 != 0)
					_ = tg.Snapshot()
				}
			}
		})
	}
	wg.Wait()
	tg.SetDraining(false)
	tg.SetMarathonHealthy(true)
	waitFor(t, 5*time.Second, "up again through active checks", tg.Up)
	if s := tg.Snapshot(); s.PassiveFailures != workers*calls || s.Ejections == 0 {
		t.Errorf("passive failures %d (want %d), ejections %d (want some)", s.PassiveFailures, workers*calls, s.Ejections)
	}
}

func BenchmarkUp(b *testing.B) {
	c := NewChecker(Options{})
	tg, _ := c.newTarget("127.0.0.1:9", Config{Enabled: true})
	b.ReportAllocs()
	for b.Loop() {
		if !tg.Up() {
			b.Fatal("down")
		}
		tg.ReportSuccess()
	}
}

func BenchmarkWeightFactorRamping(b *testing.B) {
	c := NewChecker(Options{})
	tg, _ := c.newTarget("127.0.0.1:9", Config{Enabled: true, SlowStart: time.Hour})
	tg.SetMarathonHealthy(false)
	tg.SetMarathonHealthy(true)
	now := time.Now().UnixNano()
	b.ReportAllocs()
	for b.Loop() {
		if tg.WeightFactor(now) == 0 {
			b.Fatal("zero")
		}
	}
}

func TestAlign(t *testing.T) {
	for _, tt := range []struct {
		d, inter, grid time.Duration
	}{
		{2 * time.Second, 2 * time.Second, 50 * time.Millisecond},
		{1234 * time.Millisecond, 2 * time.Second, 50 * time.Millisecond},
		{time.Millisecond, 2 * time.Second, 50 * time.Millisecond},
		{395 * time.Millisecond, 400 * time.Millisecond, 10 * time.Millisecond},
		{20 * time.Millisecond, 20 * time.Millisecond, 0}, // too short for a grid
	} {
		before := time.Now().UnixNano()
		got := align(tt.d, tt.inter)
		after := time.Now().UnixNano()
		if tt.grid == 0 {
			if got != tt.d {
				t.Errorf("align(%v, %v) = %v, want it unchanged", tt.d, tt.inter, got)
			}
			continue
		}
		g := int64(tt.grid)
		// The deadline lands on the grid, near d, and never in the past.
		onGrid := false
		for now := before; now <= after; now++ {
			if (now+int64(got))%g == 0 {
				onGrid = true
				break
			}
		}
		if !onGrid || got <= 0 || got < tt.d-tt.grid/2-time.Millisecond || got > tt.d+tt.grid {
			t.Errorf("align(%v, %v) = %v: not on the %v grid near %v", tt.d, tt.inter, got, tt.grid, tt.d)
		}
	}
}
