package elb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/edgeproxy/edgeproxy/elb/elbtest"
)

func TestNewRegistrarValidates(t *testing.T) {
	const arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edge/73e2d6bc24d8a067"
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no targets", Options{}, "no targets"},
		{"empty CLB name", Options{Targets: []Target{CLB{}}}, "1 to 32"},
		{"bad CLB name", Options{Targets: []Target{CLB{Name: "edge_lb"}}}, `"edge_lb" may only contain`},
		{"not an ARN", Options{Targets: []Target{TargetGroup{ARN: "edge-tg"}}}, `"edge-tg" is not a target group ARN`},
		{"LB ARN", Options{Targets: []Target{TargetGroup{ARN: "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/1"}}}, "not a target group ARN"},
		{"bad port", Options{Targets: []Target{TargetGroup{ARN: arn, Port: 70000}}}, "out of range"},
		{"bad frontend port", Options{Targets: []Target{CLB{Name: "a"}}, Port: -1}, "out of range"},
		{"duplicate", Options{Targets: []Target{CLB{Name: "a"}, CLB{Name: "a"}}}, `"clb/a" listed twice`},
		{"nil", Options{Targets: []Target{nil}}, "nil target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRegistrar(envlessConfig(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	r, err := NewRegistrar(envlessConfig(), Options{Targets: []Target{CLB{Name: "edge-clb"}, TargetGroup{ARN: arn}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WaitDrained(context.Background()); err == nil {
		t.Error("WaitDrained before Deregister succeeded")
	}
}

// The CLB path end to end: no registration before SetReady, registration
// after, repair of an out-of-band deregistration, then deregistration with
// connection draining.
func TestCLBLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, elbtest.Options{})
	e.fake.CreateCLB(elbtest.CLBConfig{Name: "edge-clb", ConnectionDraining: true, DrainingTimeout: 60 * time.Second,
		HealthyAfter: 10 * time.Second})
	id := e.fake.Instance().ID
	r := e.start(e.options(CLB{Name: "edge-clb"}))

	waitFor(t, "two observations before ready", func() bool { return status(r, 0).Observations >= 2 })
	if st := status(r, 0); st.State != StateWaitingReady || st.Registered || st.Kind != KindCLB || st.DeregistrationDelay != 60*time.Second {
		t.Errorf("before ready: %+v", st)
	}
	if n := e.fake.Calls("RegisterInstancesWithLoadBalancer"); n != 0 {
		t.Fatalf("registered %d times before SetReady", n)
	}
	if !r.Kind().MayFailHealthCheck() {
		t.Error("CLB: failing the health check first should be allowed")
	}

	r.SetReady()
	waitFor(t, "registration", func() bool { return registered(e.fake, "edge-clb", id, 0) })
	waitFor(t, "InService", func() bool { return status(r, 0).LBState == "InService" && status(r, 0).LBReason == "N/A" })
	if st := status(r, 0); st.State != StateRegistered || !st.Registered || st.Registrations != 1 || st.ID != id {
		t.Errorf("after ready: %+v", st)
	}

	if !e.fake.DeregisterOutOfBand("edge-clb", id) {
		t.Fatal("out-of-band deregistration found nothing")
	}
	waitFor(t, "repair", func() bool { return status(r, 0).Repairs == 1 })
	if !registered(e.fake, "edge-clb", id, 0) || !e.logs.contains("deregistered out of band") {
		t.Errorf("not repaired: %+v", e.fake.Registrations("edge-clb"))
	}

	ctx := context.Background()
	if err := r.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	calls := e.fake.Calls("RegisterInstancesWithLoadBalancer")
	start := e.clock.Now()
	if err := r.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	waited := e.clock.Now().Sub(start)
	if waited < 55*time.Second || waited > 200*time.Second {
		t.Errorf("WaitDrained took %v of clock time, want about the 60 s draining timeout", waited)
	}
	if regs := e.fake.Registrations("edge-clb"); len(regs) != 0 {
		t.Errorf("still registered: %+v", regs)
	}
	if st := status(r, 0); st.State != StateDrained || st.Deregistrations != 1 || st.Registered {
		t.Errorf("after drain: %+v", st)
	}
	// The loop is stopped: nothing re-registers the instance.
	time.Sleep(200 * time.Millisecond) // > one scaled resync
	if n := e.fake.Calls("RegisterInstancesWithLoadBalancer"); n != calls {
		t.Errorf("registered again after Deregister: %d calls, was %d", n, calls)
	}
	// Idempotent.
	if err := r.Deregister(ctx); err != nil {
		t.Errorf("second Deregister: %v", err)
	}
}

// ALB with instance targets: the registered port is the frontend's bind
// port, not the group's.
func TestALBInstanceTarget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, elbtest.Options{})
	arn := e.fake.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "edge-alb", TargetType: "instance", Port: 80,
		DeregistrationDelay: 120 * time.Second, HealthyAfter: 20 * time.Second})
	id := e.fake.Instance().ID
	opts := e.options(TargetGroup{ARN: arn})
	opts.Port = 8080
	r := e.start(opts)

	waitFor(t, "first observation", func() bool { return status(r, 0).Observations >= 1 })
	if n := e.fake.Calls("RegisterTargets"); n != 0 || status(r, 0).State != StateWaitingReady {
		t.Fatalf("before ready: %d RegisterTargets, %+v", n, status(r, 0))
	}
	r.SetReady()
	waitFor(t, "registration on port 8080", func() bool { return registered(e.fake, arn, id, 8080) })
	waitFor(t, "healthy", func() bool { return status(r, 0).LBState == "healthy" })
	if st := status(r, 0); st.Port != 8080 || st.ID != id || st.DeregistrationDelay != 120*time.Second {
		t.Errorf("status = %+v", st)
	}
	if k := r.Kind(); k != KindALB || !k.MayFailHealthCheck() {
		t.Errorf("Kind = %v", k)
	}

	// Deregistered out of band: the target drains, and the loop registers
	// it again instead of waiting for the drain to finish.
	e.fake.DeregisterOutOfBand(arn, id)
	waitFor(t, "repair", func() bool { return status(r, 0).Repairs == 1 && registered(e.fake, arn, id, 8080) })
	if !e.logs.contains("balancer says draining Target.DeregistrationInProgress") {
		t.Error("the repair did not happen while the target was draining")
	}

	ctx := context.Background()
	if err := r.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	var last []elbtest.Request
	for _, q := range e.fake.Requests() {
		if q.Action == "DeregisterTargets" {
			last = append(last, q)
		}
	}
	if len(last) != 1 || last[0].Params.Get("Targets.member.1.Id") != id || last[0].Params.Get("Targets.member.1.Port") != "8080" {
		t.Errorf("DeregisterTargets requests = %+v; want the exact id and port", last)
	}
	start := e.clock.Now()
	if err := r.WaitDrained(ctx); err != nil {
		t.Fatal(err)
	}
	if waited := e.clock.Now().Sub(start); waited < 115*time.Second || waited > 250*time.Second {
		t.Errorf("WaitDrained took %v, want about the 120 s delay", waited)
	}
	if regs := e.fake.Registrations(arn); len(regs) != 0 {
		t.Errorf("still registered: %+v", regs)
	}
}

// NLB with ip targets: the private IPv4 is registered, and Kind says the
// health check must not be failed first.
func TestNLBIPTarget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, elbtest.Options{})
	arn := e.fake.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "edge-nlb", TargetType: "ip", Port: 443,
		LoadBalancerType: "network", DeregistrationDelay: 120 * time.Second, ProxyProtocolV2: true})
	e.fake.CreateCLB(elbtest.CLBConfig{Name: "legacy"})
	r := e.start(e.options(CLB{Name: "legacy"}, TargetGroup{ARN: arn}))
	r.SetReady()
	ip := e.fake.Instance().PrivateIPv4
	waitFor(t, "ip registration on the group port", func() bool { return registered(e.fake, arn, ip, 443) })
	waitFor(t, "both registered", func() bool { return status(r, 0).Registered && status(r, 1).Registered })
	if st := status(r, 1); st.Kind != KindNLB || st.ID != ip || st.Port != 443 {
		t.Errorf("status = %+v", st)
	}
	if k := r.Kind(); k != KindNLB || k.MayFailHealthCheck() {
		t.Errorf("Kind = %v; an NLB among the targets must win", k)
	}
	if err := r.Deregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	if registered(e.fake, arn, ip, 443) {
		t.Error("still registered after Deregister")
	}
}

// Throttling beyond the SDK's own retries, a 503 outage and a
// connection-refused outage (each a minute of scaled time): the loop backs
// off, then finishes the job.
func TestSurvivesThrottlingAndOutages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, elbtest.Options{})
	arn := e.fake.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "edge", DeregistrationDelay: elbtest.NoDelay})
	id := e.fake.Instance().ID
	e.fake.ThrottleNext(12) // four SDK calls' worth of attempts
	r := e.start(e.options(TargetGroup{ARN: arn}))
	r.SetReady()
	waitFor(t, "registration despite throttling", func() bool { return registered(e.fake, arn, id, 80) })
	if st := status(r, 0); st.Throttles == 0 || st.LastErrorCode != "Throttling" || st.Permanent {
		t.Errorf("status after throttling = %+v", st)
	}
	if !e.logs.contains("throttled by the ELB API") {
		t.Error("throttling not logged")
	}

	for _, mode := range []elbtest.OutageMode{elbtest.OutageUnavailable, elbtest.OutageRefused} {
		errs := status(r, 0).Errors
		repairs := status(r, 0).Repairs
		e.fake.DeregisterOutOfBand(arn, id)
		e.fake.Outage(600*time.Millisecond, mode) // 2 min of scaled time
		waitFor(t, "errors during the outage", func() bool { return status(r, 0).Errors > errs })
		waitFor(t, "repair after the outage", func() bool { return status(r, 0).Repairs == repairs+1 })
		if !registered(e.fake, arn, id, 80) || status(r, 0).Permanent {
			t.Errorf("mode %v: %+v", mode, status(r, 0))
		}
	}
}

// Permanent errors are classified, logged loudly and retried slowly; the
// registrar recovers when the cause is fixed.
func TestPermanentErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(f *elbtest.Server) Target
		identity Identity
		code     string
		fix      func(f *elbtest.Server)
	}{
		{name: "CLB not found", code: "LoadBalancerNotFound",
			setup: func(*elbtest.Server) Target { return CLB{Name: "missing"} },
			fix:   func(f *elbtest.Server) { f.CreateCLB(elbtest.CLBConfig{Name: "missing"}) }},
		{name: "target group not found", code: "TargetGroupNotFound",
			setup: func(f *elbtest.Server) Target {
				arn := f.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "gone"})
				f.DeleteTargetGroup(arn)
				return TargetGroup{ARN: arn}
			}},
		{name: "access denied", code: "AccessDenied",
			setup: func(f *elbtest.Server) Target {
				f.DenyAccess("RegisterTargets")
				return TargetGroup{ARN: f.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "iam"})}
			},
			fix: func(f *elbtest.Server) { f.ClearFaults() }},
		{name: "invalid target", code: "InvalidTarget",
			identity: Identity{InstanceID: "i-0ffffffffffffffff", Region: "us-east-1", AvailabilityZone: "us-east-1a"},
			setup: func(f *elbtest.Server) Target {
				return TargetGroup{ARN: f.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "inv"})}
			},
			fix: func(f *elbtest.Server) { f.AddInstance("i-0ffffffffffffffff") }},
		{name: "unsupported target type",
			setup: func(f *elbtest.Server) Target {
				return TargetGroup{ARN: f.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "fn", TargetType: "lambda"})}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, elbtest.Options{})
			target := tt.setup(e.fake)
			opts := e.options(target)
			opts.Identity = tt.identity
			r := e.start(opts)
			r.SetReady()
			waitFor(t, "a permanent error", func() bool { return status(r, 0).Permanent })
			st := status(r, 0)
			if st.LastErrorCode != tt.code || st.Registered || st.State == StateRegistered {
				t.Errorf("status = %+v", st)
			}
			if !e.logs.contains("PERMANENT ERROR" + prefixSpace(tt.code)) {
				t.Error("permanent error not logged loudly")
			}
			// Still retrying, at MaxBackoff (2 min scaled: about 0.6 s).
			errs := st.Errors
			waitFor(t, "a slow retry", func() bool { return status(r, 0).Errors > errs })
			if tt.fix == nil {
				return
			}
			tt.fix(e.fake)
			waitFor(t, "recovery", func() bool { return status(r, 0).Registered })
			if st := status(r, 0); st.Permanent || st.State != StateRegistered || st.LastErrorCode != tt.code {
				t.Errorf("after the fix: %+v", st)
			}
		})
	}
}

// The hop-limit trap is reported loudly in Status and the log while Run
// keeps trying, and registration follows once the hop limit is raised.
func TestRunReportsHopLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, elbtest.Options{Hops: 1})
	e.fake.CreateCLB(elbtest.CLBConfig{Name: "edge"})
	r := e.start(e.options(CLB{Name: "edge"}))
	r.SetReady()
	waitFor(t, "the identity error", func() bool { return status(r, 0).Errors > 0 })
	st := status(r, 0)
	if !st.Permanent || st.State != StateStarting || !strings.Contains(st.LastError, "HttpPutResponseHopLimit 2") {
		t.Errorf("status = %+v", st)
	}
	if !e.logs.contains("PERMANENT ERROR: cannot read instance identity") {
		t.Error("not logged loudly")
	}
	e.fake.SetHopLimit(2)
	waitFor(t, "registration", func() bool { return status(r, 0).Registered })
	if st := status(r, 0); st.Permanent {
		t.Errorf("still permanent: %+v", st)
	}
}

// The SDK's standard configuration: endpoints, credentials and the IMDS
// endpoint all from the environment; no region configured, so the
// instance's region from IMDS is used.
func TestStandardEnvironment(t *testing.T) {
	fake := elbtest.New(elbtest.Options{Region: "eu-central-1"})
	defer fake.Close()
	arn := fake.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "env"})
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":                  fake.URL(),
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": fake.IMDSURL(),
		"AWS_ACCESS_KEY_ID":                 "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY":             "secret",
		"AWS_REGION":                        "",
		"AWS_DEFAULT_REGION":                "",
		"AWS_PROFILE":                       "",
		"AWS_CONFIG_FILE":                   filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE":       filepath.Join(dir, "credentials"),
	} {
		t.Setenv(k, v)
	}
	if err := os.WriteFile(filepath.Join(dir, "config"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "" {
		t.Fatalf("region %q leaked into the test", cfg.Region)
	}
	logs := &logSink{t: t}
	r, err := NewRegistrar(cfg, Options{Targets: []Target{TargetGroup{ARN: arn}}, Logf: logs.logf})
	if err != nil {
		t.Fatal(err)
	}
	r.SetReady()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "registration", func() bool { return registered(fake, arn, fake.Instance().ID, 80) })
	if err := r.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after Deregister = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Run did not return after Deregister")
	}
	cancel()
}

// envlessConfig is a config that never reaches anything.
func envlessConfig() aws.Config { return aws.Config{Region: "us-east-1"} }
