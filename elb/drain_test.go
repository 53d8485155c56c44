package elb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/elb/elbtest"
)

// WaitDrained honours the deregistration delay read from the target group:
// it returns when the balancer reports the target gone, or once the delay
// (plus slack) has passed while the balancer still says draining.
func TestWaitDrainedHonoursDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		delay    time.Duration // deregistration_delay.timeout_seconds
		drainFor time.Duration // how long the fake shows draining
		min, max time.Duration // WaitDrained duration on the scaled clock
		gone     bool
	}{
		// Upper bounds leave room for a loaded test machine: 50 s of
		// scaled time is a quarter of a real second.
		{name: "gone after the 300s default", delay: 0, drainFor: 0, min: 295 * time.Second, max: 400 * time.Second, gone: true},
		{name: "gone before the delay", delay: 300 * time.Second, drainFor: 120 * time.Second, min: 115 * time.Second, max: 250 * time.Second, gone: true},
		{name: "stuck draining", delay: 60 * time.Second, drainFor: time.Hour, min: 64 * time.Second, max: 200 * time.Second},
		{name: "no delay", delay: elbtest.NoDelay, min: 0, max: 60 * time.Second, gone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, elbtest.Options{})
			arn := e.fake.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "d", LoadBalancerType: "network",
				DeregistrationDelay: tt.delay, DrainFor: tt.drainFor})
			r := e.start(e.options(TargetGroup{ARN: arn}))
			r.SetReady()
			waitFor(t, "registration", func() bool { return status(r, 0).Registered })
			ctx := context.Background()
			if err := r.Deregister(ctx); err != nil {
				t.Fatal(err)
			}
			start := e.clock.Now()
			if err := r.WaitDrained(ctx); err != nil {
				t.Fatal(err)
			}
			if d := e.clock.Now().Sub(start); d < tt.min || d > tt.max {
				t.Errorf("WaitDrained took %v of clock time, want %v..%v", d, tt.min, tt.max)
			}
			if gone := len(e.fake.Registrations(arn)) == 0; gone != tt.gone {
				t.Errorf("fake registrations %+v; want gone=%v", e.fake.Registrations(arn), tt.gone)
			}
			if !tt.gone && !e.logs.contains("not waiting longer") {
				t.Error("giving up on a stuck drain not logged")
			}
			if st := status(r, 0); st.State != StateDrained {
				t.Errorf("state = %s", st.State)
			}
		})
	}
}

// WaitDrained gives up when its context ends.
func TestWaitDrainedContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, elbtest.Options{})
	arn := e.fake.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "d", DeregistrationDelay: 3600 * time.Second})
	r := e.start(e.options(TargetGroup{ARN: arn}))
	r.SetReady()
	waitFor(t, "registration", func() bool { return status(r, 0).Registered })
	if err := r.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := r.WaitDrained(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

// Deregister without Run (the process is stopped before it got ready):
// identity is read on demand, the call succeeds, and so does the wait.
// A missing balancer counts as nothing to deregister; IAM denial fails.
func TestDeregisterWithoutRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, elbtest.Options{})
	arn := e.fake.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "d"})
	r, err := NewRegistrar(e.cfg(), e.options(TargetGroup{ARN: arn}, CLB{Name: "deleted"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st[0].State != StateDrained || st[1].State != StateDrained {
		t.Errorf("status = %+v", st)
	}
	if !e.logs.contains("nothing to deregister") {
		t.Error("missing CLB not reported")
	}
	// Run after Deregister does nothing and returns.
	if err := r.Run(ctx); err != nil {
		t.Errorf("Run after Deregister = %v", err)
	}
	if err := r.Run(ctx); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run = %v", err)
	}

	denied := newEnv(t, elbtest.Options{})
	arn = denied.fake.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "d"})
	denied.fake.DenyAccess("DeregisterTargets")
	r, err = NewRegistrar(denied.cfg(), denied.options(TargetGroup{ARN: arn}))
	if err != nil {
		t.Fatal(err)
	}
	err = r.Deregister(ctx)
	if err == nil || errorCode(err) != "AccessDenied" || !denied.logs.contains("PERMANENT ERROR AccessDenied") {
		t.Errorf("Deregister with IAM denial = %v", err)
	}
	if err := r.WaitDrained(ctx); err == nil {
		t.Error("WaitDrained after a failed Deregister succeeded")
	}
}

// Deregister retries through throttling and an outage until it succeeds.
func TestDeregisterRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, elbtest.Options{})
	e.fake.CreateCLB(elbtest.CLBConfig{Name: "edge"})
	r := e.start(e.options(CLB{Name: "edge"}))
	r.SetReady()
	waitFor(t, "registration", func() bool { return status(r, 0).Registered })
	e.fake.InjectFault(elbtest.Fault{Action: "DeregisterInstancesFromLoadBalancer", Code: "Throttling", Times: 6})
	e.fake.InjectFault(elbtest.Fault{Action: "DeregisterInstancesFromLoadBalancer", Code: "ServiceUnavailable", Times: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if st := status(r, 0); st.Throttles == 0 || st.State != StateDraining {
		t.Errorf("status = %+v", st)
	}
	if err := r.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	if regs := e.fake.Registrations("edge"); len(regs) != 0 {
		t.Errorf("still registered: %+v", regs)
	}
}

func TestBackoff(t *testing.T) {
	b := &backoff{min: time.Second, max: 2 * time.Minute, rand: func() float64 { return 0.999999 }}
	var got []time.Duration
	for range 9 {
		got = append(got, b.next(transient).Round(time.Second))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 120, 120}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("transient backoff = %v, want %v (s)", got, want)
		}
	}
	b.reset()
	if d := b.next(throttled); d.Round(time.Second) != 2*time.Second {
		t.Errorf("first throttle backoff = %v, want 2s", d)
	}
	b.rand = func() float64 { return 0 }
	if d := b.next(permanent); d != time.Minute {
		t.Errorf("permanent backoff = %v, want max/2 with zero jitter", d)
	}
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want errClass
	}{
		{errors.New("connection refused"), transient},
		{permanentError{errors.New("lambda")}, permanent},
	} {
		if got, _ := classify(tt.err); got != tt.want {
			t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
