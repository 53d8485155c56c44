package healthcheck

import (
	"math/rand/v2"
	"time"
)

// workerIdle is how long a check worker waits for work before it exits.
const workerIdle = 10 * time.Second

// fire is a Target's timer function: it hands the check to a worker. The
// timer goroutine stays tiny; workers live on with their grown stacks, so
// a check does not pay for a new goroutine growing its stack through the
// dialer.
func (t *Target) fire() {
	c := t.c
	t.mu.Lock()
	if t.removed || t.inFlight {
		t.mu.Unlock()
		return
	}
	t.inFlight = true
	c.wg.Add(1) // before Close can observe removed, so before its Wait
	t.mu.Unlock()

	select {
	case c.sem <- struct{}{}:
	case <-t.ctx.Done():
		t.mu.Lock()
		t.inFlight = false
		t.mu.Unlock()
		c.wg.Done()
		return
	}
	select {
	case c.work <- t:
	default:
		c.workers.Add(1) // c.wg is held, so Close is not yet waiting
		go c.worker(t)
	}
}

// worker runs checks until it has been idle for workerIdle or the
// Checker closes. The semaphore, not the worker count, bounds the checks
// in flight: a check that finds no idle worker starts a new one.
func (c *Checker) worker(t *Target) {
	defer c.workers.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.run()
		idle.Reset(workerIdle)
		select {
		case t = <-c.work:
		case <-idle.C:
			return
		case <-c.done:
			return
		}
	}
}

// run performs one check of t, holding a semaphore slot, and schedules
// the next. At most one check of a Target is in flight, and the next is
// scheduled only when this one and its hooks are done.
func (t *Target) run() {
	c := t.c
	defer c.wg.Done()
	start := time.Now()
	res, code, err := t.probe(start.Add(t.cfg.Timeout))
	<-c.sem
	took := time.Since(start)
	now := c.now()

	t.mu.Lock()
	if t.removed {
		t.inFlight = false
		t.mu.Unlock()
		return
	}
	t.record(res, code, err, took, now)
	deliver := t.claimDelivery()
	t.mu.Unlock()

	if c.onCheck != nil {
		c.onCheck(t, res, took)
	}
	if deliver {
		t.deliver()
	}

	t.mu.Lock()
	t.inFlight = false
	if !t.removed {
		d := t.interval()
		t.timer.Reset(align(c.spread(d), d))
	}
	t.mu.Unlock()
}

// maxGrid is the coarsest grid align uses: at inter 2s a Checker wakes at
// most 20 times a second to start checks, however many Targets it has.
const maxGrid = 50 * time.Millisecond

// align moves a delay of about d so that it ends on a grid of inter/40
// (at most maxGrid; no grid under 1ms). Checks that fall due close
// together then start in one timer wakeup instead of one wakeup each,
// which halves the CPU cost of 1,000 targets. The shift, at most 1.25% of
// inter, is well inside the random spread.
func align(d, inter time.Duration) time.Duration {
	g := int64(min(inter/40, maxGrid))
	if g < int64(time.Millisecond) {
		return d
	}
	now := time.Now().UnixNano()
	at := (now + int64(d) + g/2) / g * g
	if at <= now {
		at += g
	}
	return time.Duration(at - now)
}

// spread randomises d by up to plus or minus spreadPct percent.
func (c *Checker) spread(d time.Duration) time.Duration {
	r := int64(d) * c.spreadPct / 100
	if r <= 0 {
		return d
	}
	return d - time.Duration(r) + time.Duration(rand.Int64N(2*r+1))
}
