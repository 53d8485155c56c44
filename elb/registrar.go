package elb

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	clbapi "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
)

// Options configures a Registrar. Durations left zero take the defaults
// named in each field's comment.
type Options struct {
	// Targets are the balancers to register with (at least one).
	Targets []Target
	// Port is the frontend's bind port, registered with target groups
	// whose TargetGroup.Port is zero. Zero: the target group's own port.
	Port int

	// Identity, when its InstanceID is set, is used instead of asking the
	// instance metadata service (for example when the scheduler passes it
	// in because IMDS is out of reach).
	Identity Identity
	// IMDS adjusts the metadata client LoadIdentity builds.
	IMDS []func(*imds.Options)

	// Resync is the interval between observations of a healthy
	// registration; each wait is jittered by ±20%. Default 30 s.
	Resync time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential backoff
	// after errors. Permanent errors wait MaxBackoff at once. Defaults 1 s
	// and 2 min.
	MinBackoff, MaxBackoff time.Duration
	// DrainPoll is the interval WaitDrained polls at. Default 5 s.
	DrainPoll time.Duration
	// DrainSlack is how long WaitDrained waits past the deregistration
	// delay before it stops waiting for the balancer to report the target
	// gone. Default 5 s.
	DrainSlack time.Duration

	// Logf receives state changes and every error. Default log.Printf.
	Logf func(format string, args ...any)
	// Now and After are the clock. Defaults time.Now and time.After.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Rand returns a float in [0,1) for jitter. Default math/rand/v2.
	Rand func() float64
}

// State is a target's place in the registration lifecycle.
type State string

// States, in lifecycle order.
const (
	StateStarting      State = "starting"      // reading identity and target description
	StateWaitingReady  State = "waiting-ready" // not registered; waiting for SetReady
	StateRegistering   State = "registering"   // registration needed or failing
	StateRegistered    State = "registered"    // the balancer lists the target
	StateDeregistering State = "deregistering" // Deregister called, not done yet
	StateDraining      State = "draining"      // deregistered; balancer draining
	StateDrained       State = "drained"       // gone, or the delay has passed
)

// TargetStatus is a snapshot of one target, for stats pages and metrics.
type TargetStatus struct {
	Target string // "clb/NAME" or the target group ARN
	Kind   Kind
	ID     string // registered id: instance id or IPv4 address
	Port   int    // registered port; 0 for CLBs
	State  State
	// LBState and LBReason are the balancer's own words from the last
	// observation ("healthy", "InService", "Target.NotRegistered", ...).
	LBState, LBReason string
	// Registered: the last observation (or our last call) has the target
	// registered and not draining.
	Registered bool
	// Permanent: the last attempt failed with an error retrying will not
	// fix (missing balancer, IAM, invalid target). It is cleared by the
	// next success.
	Permanent bool
	// LastError is the most recent failure, kept after recovery;
	// LastErrorCode is its AWS error code, if any.
	LastError     string
	LastErrorCode string
	LastErrorAt   time.Time
	LastObserved  time.Time
	// DeregistrationDelay is the target group's
	// deregistration_delay.timeout_seconds or the CLB's connection draining
	// timeout (0 when draining is off).
	DeregistrationDelay time.Duration

	Observations    uint64 // successful health reads
	Registrations   uint64 // successful register calls
	Repairs         uint64 // of those, after an out-of-band deregistration
	Deregistrations uint64
	Errors          uint64 // failed attempts, throttles included
	Throttles       uint64
}

// Registrar keeps this instance registered with its load balancers and
// takes it out again on shutdown. Its methods are safe for concurrent use.
type Registrar struct {
	opts    Options
	cfg     aws.Config
	targets []*target

	ready     chan struct{}
	readyOnce sync.Once
	drain     chan struct{}
	drainOnce sync.Once
	running   atomic.Bool

	idMu    sync.Mutex
	id      Identity
	idKnown bool
}

type target struct {
	t Target
	b backend

	act sync.Mutex // serialises register against deregister

	mu       sync.Mutex // guards the rest
	res      resolved
	resolved bool
	seen     bool      // registered at least once (by us or found so)
	deregAt  time.Time // when Deregister succeeded
	gone     bool      // nothing left to drain
	st       TargetStatus
}

// NewRegistrar checks opts and builds the ELB clients from cfg (as returned
// by config.LoadDefaultConfig, so region, credentials and endpoint overrides
// such as AWS_ENDPOINT_URL follow the SDK's standard configuration). When
// cfg has no region the instance's region from IMDS is used. It makes no
// network calls.
func NewRegistrar(cfg aws.Config, opts Options) (*Registrar, error) {
	if len(opts.Targets) == 0 {
		return nil, errors.New("elb: no targets to register with")
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("elb: port %d out of range", opts.Port)
	}
	setDefault(&opts.Resync, 30*time.Second)
	setDefault(&opts.MinBackoff, time.Second)
	setDefault(&opts.MaxBackoff, 2*time.Minute)
	setDefault(&opts.DrainPoll, 5*time.Second)
	setDefault(&opts.DrainSlack, 5*time.Second)
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = opts.MinBackoff
	}
	if opts.Logf == nil {
		opts.Logf = log.Printf
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.After == nil {
		opts.After = time.After
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	r := &Registrar{
		opts:  opts,
		cfg:   cfg,
		ready: make(chan struct{}),
		drain: make(chan struct{}),
	}
	if opts.Identity.InstanceID != "" {
		r.id, r.idKnown = opts.Identity, true
	}
	var (
		clbClient *clbapi.Client
		v2Client  *elbv2.Client
	)
	seen := map[string]bool{}
	for _, t := range opts.Targets {
		if t == nil {
			return nil, errors.New("elb: nil target")
		}
		if err := t.validate(); err != nil {
			return nil, err
		}
		if seen[t.String()] {
			return nil, fmt.Errorf("elb: target %q listed twice", t.String())
		}
		seen[t.String()] = true
		tt := &target{t: t, st: TargetStatus{Target: t.String(), State: StateStarting}}
		switch t := t.(type) {
		case CLB:
			if clbClient == nil {
				clbClient = clbapi.NewFromConfig(cfg)
			}
			tt.b = &clbBackend{name: t.Name, client: clbClient, region: r.clbRegion}
			tt.st.Kind = KindCLB
		case TargetGroup:
			if v2Client == nil {
				v2Client = elbv2.NewFromConfig(cfg)
			}
			tt.b = &tgBackend{tg: t, port: opts.Port, client: v2Client, region: r.v2Region}
		default:
			return nil, fmt.Errorf("elb: unsupported target type %T", t)
		}
		r.targets = append(r.targets, tt)
	}
	return r, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

// clbRegion and v2Region fill in the instance's region when cfg has none.
func (r *Registrar) clbRegion(o *clbapi.Options) {
	if o.Region == "" {
		o.Region = r.region()
	}
}

func (r *Registrar) v2Region(o *elbv2.Options) {
	if o.Region == "" {
		o.Region = r.region()
	}
}

func (r *Registrar) region() string {
	r.idMu.Lock()
	defer r.idMu.Unlock()
	return r.id.Region
}

// SetReady allows registration. Call it once the frontends are bound and
// the health endpoint answers 200. Later calls do nothing.
func (r *Registrar) SetReady() {
	r.readyOnce.Do(func() { close(r.ready) })
}

func (r *Registrar) isReady() bool {
	select {
	case <-r.ready:
		return true
	default:
		return false
	}
}

func (r *Registrar) draining() bool {
	select {
	case <-r.drain:
		return true
	default:
		return false
	}
}

// Run reads the instance identity, then keeps every target registered
// (once SetReady has been called) until ctx is done or Deregister is
// called. Each target is observed every Resync and registered when the
// balancer does not list it, which also repairs out-of-band
// deregistrations. Errors are retried with jittered exponential backoff;
// permanent ones (missing balancer, IAM, invalid target) are logged loudly,
// shown in Status and retried every MaxBackoff. Run returns ctx.Err() when
// ctx ends it and nil after Deregister.
func (r *Registrar) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("elb: Registrar.Run called twice")
	}
	if _, err := r.identity(ctx, r.drain); err != nil {
		if r.draining() {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	for _, t := range r.targets {
		wg.Go(func() { r.loop(ctx, t) })
	}
	wg.Wait()
	if r.draining() {
		return nil
	}
	return ctx.Err()
}

// identity returns the instance identity, reading it from IMDS with
// backoff until it succeeds, ctx ends or stop is closed.
func (r *Registrar) identity(ctx context.Context, stop <-chan struct{}) (Identity, error) {
	r.idMu.Lock()
	id, ok := r.id, r.idKnown
	r.idMu.Unlock()
	if ok {
		return id, nil
	}
	bo := r.newBackoff()
	for {
		id, err := LoadIdentity(ctx, r.cfg, r.opts.IMDS...)
		if err == nil {
			r.idMu.Lock()
			r.id, r.idKnown = id, true
			r.idMu.Unlock()
			r.opts.Logf("elb: instance %s in %s (%s), private IPv4 %v", id.InstanceID, id.AvailabilityZone, id.Region, id.PrivateIPv4)
			return id, nil
		}
		if ctx.Err() != nil {
			return Identity{}, fmt.Errorf("elb: reading instance identity: %w", ctx.Err())
		}
		// The hop limit and a refused token need an operator; say so.
		cls, loud := transient, ""
		if errors.Is(err, ErrIMDSHopLimit) || errors.Is(err, ErrIMDSTokenRefused) {
			cls, loud = permanent, "PERMANENT ERROR: "
		}
		for _, t := range r.targets {
			t.mu.Lock()
			t.recordError(err, cls, "", r.opts.Now())
			t.mu.Unlock()
		}
		d := bo.next(transient)
		r.opts.Logf("elb: %scannot read instance identity, retrying in %v: %v", loud, d.Round(time.Millisecond), err)
		select {
		case <-ctx.Done():
			return Identity{}, fmt.Errorf("elb: reading instance identity: %w (last error: %w)", ctx.Err(), err)
		case <-stop:
			return Identity{}, fmt.Errorf("elb: reading instance identity: draining (last error: %w)", err)
		case <-r.opts.After(d):
		}
	}
}

// loop reconciles one target until ctx ends or draining starts.
func (r *Registrar) loop(ctx context.Context, t *target) {
	bo := r.newBackoff()
	for {
		if r.draining() || ctx.Err() != nil {
			return
		}
		ready := r.isReady()
		var d time.Duration
		if err := r.reconcile(ctx, t, ready); err != nil {
			if ctx.Err() != nil {
				return
			}
			d = r.fail(t, err, bo)
		} else {
			bo.reset()
			d = r.jitter(r.opts.Resync, 0.2)
		}
		var wake <-chan struct{}
		if !ready {
			wake = r.ready
		}
		select {
		case <-ctx.Done():
			return
		case <-r.drain:
			return
		case <-wake:
		case <-r.opts.After(d):
		}
	}
}

// reconcile is one observe-and-act pass for t.
func (r *Registrar) reconcile(ctx context.Context, t *target, ready bool) error {
	res, err := r.resolve(ctx, t)
	if err != nil {
		return err
	}
	obs, err := t.b.observe(ctx, res)
	if err != nil {
		return err
	}
	t.mu.Lock()
	if r.draining() {
		// Deregister owns the status from here on.
		t.mu.Unlock()
		return nil
	}
	t.observed(obs, r.opts.Now())
	if obs.registered {
		if t.st.State != StateRegistered {
			r.opts.Logf("elb: %s: %s is registered (%s %s)", t.t, res, obs.state, obs.reason)
		}
		t.seen = true
		t.st.State = StateRegistered
		t.mu.Unlock()
		return nil
	}
	if !ready {
		t.st.State = StateWaitingReady
		t.mu.Unlock()
		return nil
	}
	repair := t.seen
	t.st.State = StateRegistering
	t.mu.Unlock()
	if repair {
		r.opts.Logf("elb: %s: %s was deregistered out of band (balancer says %s %s); registering it again",
			t.t, res, obs.state, obs.reason)
	}

	t.act.Lock()
	defer t.act.Unlock()
	if r.draining() {
		return nil
	}
	if err := t.b.register(ctx, res); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen = true
	t.st.Registrations++
	if repair {
		t.st.Repairs++
	}
	t.st.Registered = true
	t.st.Permanent = false
	t.st.State = StateRegistered
	r.opts.Logf("elb: %s: registered %s", t.t, res)
	return nil
}

// resolve returns t's resolution, describing the target when needed.
func (r *Registrar) resolve(ctx context.Context, t *target) (resolved, error) {
	t.mu.Lock()
	res, ok := t.res, t.resolved
	t.mu.Unlock()
	if ok {
		return res, nil
	}
	id, err := r.identity(ctx, nil)
	if err != nil {
		return res, err
	}
	res, err = t.b.resolve(ctx, id)
	if err != nil {
		return res, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.res, t.resolved = res, true
	t.st.Kind, t.st.ID, t.st.Port, t.st.DeregistrationDelay = res.kind, res.id, res.port, res.delay
	if res.delayErr != nil {
		r.opts.Logf("elb: %s: cannot read the deregistration delay, assuming %v: %v", t.t, res.delay, res.delayErr)
	}
	r.opts.Logf("elb: %s: %s balancer, target %s, deregistration delay %v", t.t, res.kind, res, res.delay)
	return res, nil
}

// observed records a successful observation. t.mu is held.
func (t *target) observed(o observation, now time.Time) {
	t.st.Observations++
	t.st.LastObserved = now
	t.st.LBState, t.st.LBReason = o.state, o.reason
	t.st.Registered = o.registered
	t.st.Permanent = false
}

// recordError records a failed attempt. t.mu is held.
func (t *target) recordError(err error, cls errClass, code string, now time.Time) {
	t.st.Errors++
	if cls == throttled {
		t.st.Throttles++
	}
	t.st.LastError, t.st.LastErrorCode, t.st.LastErrorAt = err.Error(), code, now
	t.st.Permanent = cls == permanent
}

// fail records err for t and returns how long to wait before retrying.
func (r *Registrar) fail(t *target, err error, bo *backoff) time.Duration {
	cls, code := classify(err)
	d := bo.next(cls)
	t.mu.Lock()
	t.recordError(err, cls, code, r.opts.Now())
	if cls == permanent && isNotFound(err) {
		t.resolved = false // read the description again when it is back
	}
	t.mu.Unlock()
	switch cls {
	case permanent:
		r.opts.Logf("elb: %s: PERMANENT ERROR%s: fix the load balancer name/ARN, the IAM policy or the target; retrying in %v: %v",
			t.t, prefixSpace(code), d.Round(time.Millisecond), err)
	case throttled:
		r.opts.Logf("elb: %s: throttled by the ELB API (%s), backing off %v", t.t, code, d.Round(time.Millisecond))
	default:
		r.opts.Logf("elb: %s: retrying in %v: %v", t.t, d.Round(time.Millisecond), err)
	}
	return d
}

// Status returns a snapshot of every target, in Options.Targets order.
func (r *Registrar) Status() []TargetStatus {
	out := make([]TargetStatus, len(r.targets))
	for i, t := range r.targets {
		t.mu.Lock()
		out[i] = t.st
		t.mu.Unlock()
	}
	return out
}

// Kind summarises the balancers in front of this instance for the shutdown
// sequence: KindNLB if any target is behind an NLB, else KindUnknown if any
// target group has not been described yet, else KindALB if any is behind an
// ALB, else KindCLB. Use Kind().MayFailHealthCheck() to decide whether to
// fail the health check before deregistering.
func (r *Registrar) Kind() Kind {
	var nlb, unknown, alb bool
	for _, t := range r.targets {
		t.mu.Lock()
		k := t.st.Kind
		t.mu.Unlock()
		switch k {
		case KindNLB:
			nlb = true
		case KindUnknown:
			unknown = true
		case KindALB:
			alb = true
		}
	}
	switch {
	case nlb:
		return KindNLB
	case unknown:
		return KindUnknown
	case alb:
		return KindALB
	}
	return KindCLB
}

// backoff is a jittered exponential backoff.
type backoff struct {
	min, max time.Duration
	rand     func() float64
	n        int
}

func (r *Registrar) newBackoff() *backoff {
	return &backoff{min: r.opts.MinBackoff, max: r.opts.MaxBackoff, rand: r.opts.Rand}
}

func (b *backoff) reset() { b.n = 0 }

// next returns the wait after a failure of class c: min·2^n capped at max,
// two steps at a time for throttling, max at once for permanent errors,
// then "equal jitter" (a uniform pick in [d/2, d)) so that many instances
// restarted together spread out.
func (b *backoff) next(c errClass) time.Duration {
	switch c {
	case permanent:
		b.n = 64
	case throttled:
		b.n += 2
	default:
		b.n++
	}
	d := b.max
	if b.n < 32 {
		if e := b.min << (b.n - 1); e > 0 && e < b.max {
			d = e
		}
	}
	return d/2 + time.Duration(b.rand()*float64(d/2))
}

// prefixSpace returns " "+s, or "" for an empty s.
func prefixSpace(s string) string {
	if s == "" {
		return ""
	}
	return " " + s
}

// jitter returns d ± frac·d.
func (r *Registrar) jitter(d time.Duration, frac float64) time.Duration {
	return d + time.Duration((2*r.opts.Rand()-1)*frac*float64(d))
}
