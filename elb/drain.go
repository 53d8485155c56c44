package elb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Deregister stops the reconcile loop from registering again and
// deregisters every target (the exact id and port that were registered),
// retrying transient errors until ctx ends. A balancer or target that no
// longer exists counts as deregistered. Other permanent errors (IAM) are
// returned at once. Calling it again retries only the targets that failed.
//
// Shutdown order (reference, section 3.4): behind CLBs and ALBs the caller
// may fail its health check first (see Kind); then Deregister; keep serving
// until WaitDrained returns; then close connections politely and stop.
func (r *Registrar) Deregister(ctx context.Context) error {
	r.drainOnce.Do(func() { close(r.drain) })
	if _, err := r.identity(ctx, nil); err != nil {
		return fmt.Errorf("elb: deregistering: %w", err)
	}
	errs := make([]error, len(r.targets))
	var wg sync.WaitGroup
	for i, t := range r.targets {
		wg.Go(func() { errs[i] = r.deregisterOne(ctx, t) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Registrar) deregisterOne(ctx context.Context, t *target) error {
	// Wait for a registration in flight, so it cannot land after this.
	t.act.Lock()
	defer t.act.Unlock()
	t.mu.Lock()
	done := !t.deregAt.IsZero() || t.gone
	if !done {
		t.st.State = StateDeregistering
	}
	t.mu.Unlock()
	if done {
		return nil
	}
	bo := r.newBackoff()
	for {
		res, err := r.resolve(ctx, t)
		if err == nil {
			err = t.b.deregister(ctx, res)
		}
		if err == nil {
			now := r.opts.Now()
			t.mu.Lock()
			t.deregAt = now
			t.st.Deregistrations++
			t.st.Registered = false
			t.st.Permanent = false
			t.st.State = StateDraining
			t.mu.Unlock()
			r.opts.Logf("elb: %s: deregistered %s; the balancer drains it for up to %v", t.t, res, res.delay)
			return nil
		}
		if isNotFound(err) {
			t.mu.Lock()
			t.gone = true
			t.st.Registered = false
			t.st.State = StateDrained
			t.mu.Unlock()
			r.opts.Logf("elb: %s: nothing to deregister: %v", t.t, err)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("elb: %s: deregistering: %w", t.t, err)
		}
		cls, code := classify(err)
		t.mu.Lock()
		t.recordError(err, cls, code, r.opts.Now())
		t.mu.Unlock()
		if cls == permanent {
			r.opts.Logf("elb: %s: PERMANENT ERROR%s while deregistering: %v", t.t, prefixSpace(code), err)
			return fmt.Errorf("elb: %s: deregistering: %w", t.t, err)
		}
		d := bo.next(cls)
		r.opts.Logf("elb: %s: deregistering: retrying in %v: %v", t.t, d.Round(time.Millisecond), err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("elb: %s: deregistering: %w (last error: %w)", t.t, ctx.Err(), err)
		case <-r.opts.After(d):
		}
	}
}

// WaitDrained polls every DrainPoll until the balancers report each
// deregistered target gone (ELBv2 unused/Target.NotRegistered, CLB
// "Instance is not currently registered"), or until its deregistration
// delay plus DrainSlack has passed since Deregister (an ALB shows draining
// for the whole delay even when idle; by then it sends nothing anyway). It
// returns an error when ctx ends first or when a target was never
// deregistered; call Deregister first.
func (r *Registrar) WaitDrained(ctx context.Context) error {
	if !r.draining() {
		return errors.New("elb: WaitDrained called before Deregister")
	}
	errs := make([]error, len(r.targets))
	var wg sync.WaitGroup
	for i, t := range r.targets {
		wg.Go(func() { errs[i] = r.waitOne(ctx, t) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *Registrar) waitOne(ctx context.Context, t *target) error {
	t.mu.Lock()
	res, deregAt, gone := t.res, t.deregAt, t.gone
	t.mu.Unlock()
	if gone {
		return nil
	}
	if deregAt.IsZero() {
		return fmt.Errorf("elb: %s: not deregistered, nothing to wait for", t.t)
	}
	deadline := deregAt.Add(res.delay + r.opts.DrainSlack)
	warned := false
	for {
		obs, err := t.b.observe(ctx, res)
		now := r.opts.Now()
		switch {
		case err == nil && !obs.registered && !obs.draining, err != nil && isNotFound(err):
			t.mu.Lock()
			t.gone = true
			if err == nil {
				t.observed(obs, now)
			}
			t.st.State = StateDrained
			t.mu.Unlock()
			r.opts.Logf("elb: %s: drained after %v", t.t, now.Sub(deregAt).Round(time.Millisecond))
			return nil
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("elb: %s: waiting for the drain: %w", t.t, ctx.Err())
			}
			cls, code := classify(err)
			t.mu.Lock()
			t.recordError(err, cls, code, now)
			t.mu.Unlock()
			r.opts.Logf("elb: %s: reading drain state: %v", t.t, err)
		default:
			t.mu.Lock()
			t.observed(obs, now)
			t.mu.Unlock()
			if obs.registered && !warned {
				warned = true
				r.opts.Logf("elb: %s: registered again while draining (balancer says %s %s); was it re-registered by someone else?",
					t.t, obs.state, obs.reason)
			}
		}
		if !now.Before(deadline) {
			t.mu.Lock()
			t.st.State = StateDrained
			t.mu.Unlock()
			r.opts.Logf("elb: %s: deregistration delay %v passed %v ago; balancer still says %s %s; not waiting longer",
				t.t, res.delay, now.Sub(deregAt.Add(res.delay)).Round(time.Millisecond), obs.state, obs.reason)
			return nil
		}
		wait := min(r.opts.DrainPoll, deadline.Sub(now))
		select {
		case <-ctx.Done():
			return fmt.Errorf("elb: %s: waiting for the drain: %w", t.t, ctx.Err())
		case <-r.opts.After(wait):
		}
	}
}
