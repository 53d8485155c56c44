package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeproxy/edgeproxy/discovery/marathontest"
	"github.com/edgeproxy/edgeproxy/elb/elbtest"
)

// End-to-end tests of self-registration with AWS load balancers: the real
// binary against elbtest (the ELB Query API and IMDSv2 on loopback). The
// binary runs on the real clock, so the fake's deregistration delays are a
// few seconds; the registrar's own intervals are its defaults (resync every
// 30 s ±20 %, drain poll every 5 s), which bound how long these tests take.

// drainDelay is every fake balancer's deregistration delay (CLB: connection
// draining timeout). The fake drops a deregistered target after it.
const drainDelay = 3 * time.Second

// elbTarget is one balancer created in a fake, as edgeproxy is told about it.
type elbTarget struct {
	flag, value string // the command-line flag naming it
	lb          string // the fake's key for Registrations
	metric      string // the "target" label of edgeproxy_aws_* metrics
}

// elbKind is one kind of balancer and how edgeproxy must treat it.
type elbKind struct {
	name                           string
	setup                          func(f *elbFake) elbTarget
	register, deregister, describe string
	// target is what edgeproxy must register, given its frontend port:
	// the id, and the port the fake lists (0 for a CLB).
	target func(f *elbFake, port int) (id string, regPort int)
	// params are the exact fields of the register and deregister calls.
	params func(id string, regPort int) map[string]string
	// failsHealthFirst: the health check turns 503 before deregistration
	// (CLB, ALB); behind an NLB it stays 200 through the drain.
	failsHealthFirst bool
}

var elbKinds = []elbKind{{
	name: "CLB",
	setup: func(f *elbFake) elbTarget {
		f.CreateCLB(elbtest.CLBConfig{Name: "edge-clb", ConnectionDraining: true, DrainingTimeout: drainDelay, HealthyAfter: 500 * time.Millisecond})
		return elbTarget{flag: "--aws-clb", value: "edge-clb", lb: "edge-clb", metric: "clb/edge-clb"}
	},
	register: "RegisterInstancesWithLoadBalancer", deregister: "DeregisterInstancesFromLoadBalancer", describe: "DescribeInstanceHealth",
	target: func(f *elbFake, _ int) (string, int) { return f.Instance().ID, 0 },
	params: func(id string, _ int) map[string]string {
		return map[string]string{"Instances.member.1.InstanceId": id, "LoadBalancerName": "edge-clb"}
	},
	failsHealthFirst: true,
}, {
	name: "ALB-instance",
	setup: func(f *elbFake) elbTarget {
		arn := f.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "edge-alb", TargetType: "instance", DeregistrationDelay: drainDelay, HealthyAfter: 500 * time.Millisecond})
		return elbTarget{flag: "--aws-target-group", value: arn, lb: arn, metric: arn}
	},
	register: "RegisterTargets", deregister: "DeregisterTargets", describe: "DescribeTargetHealth",
	target: func(f *elbFake, port int) (string, int) { return f.Instance().ID, port },
	params: func(id string, port int) map[string]string {
		return map[string]string{"Targets.member.1.Id": id, "Targets.member.1.Port": strconv.Itoa(port)}
	},
	failsHealthFirst: true,
}, {
	name: "NLB-ip",
	setup: func(f *elbFake) elbTarget {
		arn := f.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "edge-nlb", TargetType: "ip", LoadBalancerType: "network", DeregistrationDelay: drainDelay, HealthyAfter: 500 * time.Millisecond})
		return elbTarget{flag: "--aws-target-group", value: arn, lb: arn, metric: arn}
	},
	register: "RegisterTargets", deregister: "DeregisterTargets", describe: "DescribeTargetHealth",
	target: func(f *elbFake, port int) (string, int) { return f.Instance().PrivateIPv4, port },
	params: func(id string, port int) map[string]string {
		return map[string]string{"Targets.member.1.Id": id, "Targets.member.1.Port": strconv.Itoa(port)}
	},
	failsHealthFirst: false,
}}

// checkParams fails unless r carries every field of want.
func checkParams(t *testing.T, r elbtest.Request, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := r.Params.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q (all: %v)", r.Action, k, got, v, r.Params)
		}
	}
}

// TestAWSRegistrationLifecycle runs, for a CLB, an ALB target group
// (instance targets) and an NLB target group (ip targets), the whole life
// of a registration through the binary:
//
//  1. Marathon answers 503 at first, so the instance is not ready: the
//     registrar observes the balancer but does not register, the health
//     check says 503 and the frontend does not answer yet.
//  2. Marathon recovers: exactly one registration, of the exact id and
//     port, made while the frontend already serves (checked from inside
//     the fake at the moment it answers the call).
//  3. Under a keep-alive load, the next 4 API calls are throttled and an
//     operator deregisters the target by hand: the registrar repairs it at
//     its next resync, and no request fails.
//  4. SIGTERM: the drain order of docs/aws.md, under the drainLoad model.
//
// The three kinds run side by side, one process and one fake each, in
// lockstep phases (subtests named kind/phase): most of the time is spent
// waiting for the registrar's 30 s resync and the drain, and t.Parallel
// would queue them behind -parallel (GOMAXPROCS, 2 here).
func TestAWSRegistrationLifecycle(t *testing.T) {
	t.Parallel()
	var runs []*lifecycle
	for _, k := range elbKinds {
		runs = append(runs, newLifecycle(t, k))
	}
	phase := func(name string, fn func(*lifecycle, *testing.T)) {
		for _, l := range runs {
			if !l.broken {
				l.broken = !t.Run(l.k.name+"/"+name, func(t *testing.T) { fn(l, t) })
			}
		}
	}
	phase("not-ready", (*lifecycle).notReady)
	time.Sleep(time.Second) // a register call would have been made by now
	phase("no-early-registration", (*lifecycle).noEarlyRegistration)
	phase("registers-once-ready", (*lifecycle).registersOnceReady)
	phase("throttled-and-deregistered-out-of-band", (*lifecycle).disturb)
	phase("repairs", (*lifecycle).repairs)
	phase("start-drain", (*lifecycle).startDrain)
	phase("drains-in-order", (*lifecycle).drains)
}

// lifecycle is one balancer kind's run of TestAWSRegistrationLifecycle.
type lifecycle struct {
	parent        *testing.T // owns the processes and the load
	k             elbKind
	f             *elbFake
	tg            elbTarget
	m             *marathontest.Server
	p             *proc
	statsPort     int
	front, health string
	id            string
	regPort       int
	broken        bool // a phase failed: skip the later ones

	mu             sync.Mutex
	atReg, atDereg []instanceView
	tl             timeline
	load           *drainLoad
	repairStart    time.Time
	stopPolls      chan struct{}
	polls          sync.WaitGroup
}

// instanceView is what the instance looked like at the moment the fake
// took a call.
type instanceView struct {
	front, health int
	frontClose    bool
	err           error
}

func newLifecycle(t *testing.T, k elbKind) *lifecycle {
	l := &lifecycle{parent: t, k: k, f: newELBFake(t)}
	l.tg = k.setup(l.f)
	bs := startCustomers(t, 4, nil)
	l.m = marathontest.New(marathontest.Options{})
	l.m.SetFault(marathontest.FaultUnavailable)
	if err := l.m.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.m.Close)
	app, err := marathontest.ParseAppDefinition(seedApp)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.m.AddApp(app, addrsOf(bs)); err != nil {
		t.Fatal(err)
	}
	cfg, port, statsPort := seedWithPorts(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	l.statsPort = statsPort
	l.front = "http://" + addr + "/"
	l.health = fmt.Sprintf("http://127.0.0.1:%d/_haproxy_health_check", statsPort)
	l.id, l.regPort = k.target(l.f, port)
	l.f.onSuccess(k.register, func() {
		code, _, err := probe(l.front, time.Second)
		l.mu.Lock()
		l.atReg = append(l.atReg, instanceView{front: code, err: err})
		l.mu.Unlock()
	})
	l.f.onSuccess(k.deregister, func() {
		l.tl.mark("deregistered")
		h, _, herr := probe(l.health, time.Second)
		code, closing, ferr := probe(l.front, time.Second)
		if herr != nil {
			ferr = fmt.Errorf("health check: %w", herr)
		}
		l.mu.Lock()
		l.atDereg = append(l.atDereg, instanceView{front: code, health: h, frontClose: closing, err: ferr})
		l.mu.Unlock()
	})
	l.p = startProxyEnv(t, addr, l.f.env(t), "run", "--config", cfg, "--bind-address", "127.0.0.1",
		"--marathon", l.m.URL(), "--startup-timeout", "60s", "--grace-period", "20s", "--lazy-close", "2s",
		"--log-format", "text", l.tg.flag, l.tg.value)
	return l
}

func (l *lifecycle) views() (reg, dereg []instanceView) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]instanceView(nil), l.atReg...), append([]instanceView(nil), l.atDereg...)
}

// 1. Not ready: the registrar observes the balancer and waits.
func (l *lifecycle) notReady(t *testing.T) {
	waitFor(t, 10*time.Second, "the registrar observes the balancer", func() bool { return l.f.Calls(l.k.describe) > 0 })
}

func (l *lifecycle) noEarlyRegistration(t *testing.T) {
	if n := l.f.Calls(l.k.register); n != 0 {
		t.Fatalf("%d register calls before the instance was ready", n)
	}
	if code, _, err := probe(l.health, time.Second); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("health check before the first Marathon sync: %d %v, want 503", code, err)
	}
	if code, _, err := probe(l.front, 300*time.Millisecond); err == nil {
		t.Fatalf("the frontend answered %d before the first Marathon sync", code)
	}
	l.m.SetFault(marathontest.FaultNone)
}

// 2. Ready: one registration, made while the frontend serves.
func (l *lifecycle) registersOnceReady(t *testing.T) {
	waitFor(t, 20*time.Second, "registration once ready", func() bool { return l.f.active(l.tg.lb, l.id, l.regPort) })
	// The fake updates its model before the hook runs: wait for the hook.
	waitFor(t, 5*time.Second, "the register hook", func() bool { reg, _ := l.views(); return len(reg) > 0 })
	regs := l.f.successes(l.k.register)
	if len(regs) != 1 {
		t.Fatalf("%d successful register calls, want 1", len(regs))
	}
	checkParams(t, regs[0], l.k.params(l.id, l.regPort))
	if reg, _ := l.views(); reg[0].err != nil || reg[0].front != 200 {
		t.Fatalf("at the register call the frontend answered %d %v, want 200", reg[0].front, reg[0].err)
	}
	if code, _, err := probe(l.health, time.Second); err != nil || code != 200 {
		t.Fatalf("health check when registered: %d %v", code, err)
	}
}

// 3. Throttling and an out-of-band deregistration, under load.
func (l *lifecycle) disturb(t *testing.T) {
	l.load = startDrainLoad(l.parent, l.front, 3)
	l.f.ThrottleNext(4)
	if !l.f.DeregisterOutOfBand(l.tg.lb, l.id) {
		t.Fatal("nothing to deregister out of band")
	}
	l.repairStart = time.Now()
}

func (l *lifecycle) repairs(t *testing.T) {
	// The registrar resyncs every 30 s ±20 %; 4 throttled calls add two
	// backoffs of at most a few seconds each.
	waitFor(t, 75*time.Second, "repair of the out-of-band deregistration", func() bool {
		return len(l.f.successes(l.k.register)) == 2 && l.f.active(l.tg.lb, l.id, l.regPort)
	})
	t.Logf("repaired %v after the out-of-band deregistration", time.Since(l.repairStart).Round(time.Millisecond))
	if n := l.f.answered("Throttling"); n != 4 {
		t.Errorf("%d throttled calls, want the 4 injected", n)
	}
	checkParams(t, l.f.successes(l.k.register)[1], l.k.params(l.id, l.regPort))
	waitMetric(t, l.statsPort, "edgeproxy_aws_target_registered", l.tg.metric, func(v float64) bool { return v == 1 })
	waitMetric(t, l.statsPort, "edgeproxy_aws_api_errors_total", l.tg.metric, func(v float64) bool { return v >= 1 })
	l.load.checkNoFailures(t, time.Time{})
}

// 4. SIGTERM under load, with the health check and the balancer watched.
func (l *lifecycle) startDrain(t *testing.T) {
	l.stopPolls = make(chan struct{})
	hw := pollHealth(l.statsPort, &l.tl, l.stopPolls)
	l.polls.Go(hw.Wait)
	l.polls.Go(func() {
		for range 2000 { // bounded: 50 s
			select {
			case <-l.stopPolls:
				return
			default:
			}
			if _, ok := l.tl.get("deregistered"); ok {
				if _, listed := l.f.registration(l.tg.lb, l.id, l.regPort); !listed {
					l.tl.mark("gone")
					return
				}
			}
			time.Sleep(25 * time.Millisecond)
		}
	})
	waitFor(t, 5*time.Second, "the health poller sees 200", func() bool { _, ok := l.tl.get("health 200"); return ok })
	l.tl.mark("sigterm")
	l.p.cmd.Process.Signal(syscall.SIGTERM)
}

func (l *lifecycle) drains(t *testing.T) {
	sigAt, _ := l.tl.get("sigterm")
	var exitErr error
	select {
	case exitErr = <-l.p.waited:
		l.p.waited <- exitErr // for the cleanup
	case <-time.After(time.Until(sigAt.Add(25 * time.Second))):
		t.Fatal("no exit within 25s of SIGTERM")
	}
	took := time.Since(sigAt)
	close(l.stopPolls)
	l.polls.Wait()
	l.load.finish(3 * time.Second) // the process is gone: each client meets the closed port
	if exitErr != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", exitErr)
	}
	if took >= 20*time.Second {
		t.Errorf("exit %v after SIGTERM, beyond the 20s grace period", took)
	}
	deregAt, ok := l.tl.get("deregistered")
	if !ok {
		t.Fatal("never deregistered")
	}
	goneAt, ok := l.tl.get("gone")
	if !ok {
		t.Fatal("the balancer never stopped listing the target")
	}
	deregs := l.f.successes(l.k.deregister)
	if len(deregs) != 1 {
		t.Fatalf("%d deregister calls, want 1", len(deregs))
	}
	checkParams(t, deregs[0], l.k.params(l.id, l.regPort))
	if n := len(l.f.successes(l.k.register)); n != 2 {
		t.Errorf("%d register calls in all, want 2", n)
	}

	// The health check at the deregistration call (exact, from inside the
	// fake) and over time (the poller, every 20 ms).
	_, atDereg := l.views()
	if len(atDereg) != 1 {
		t.Fatalf("%d deregister hooks ran, want 1", len(atDereg))
	}
	d := atDereg[0]
	if d.err != nil || d.front != 200 || d.frontClose {
		t.Errorf("at the deregister call the frontend answered %d close=%v %v; want 200 without Connection: close (listener open, no lazy close yet)",
			d.front, d.frontClose, d.err)
	}
	down, sawDown := l.tl.get("health 503")
	switch {
	case l.k.failsHealthFirst && d.health != 503:
		t.Errorf("at the deregister call the health check said %d, want 503 (CLB/ALB: fail it first)", d.health)
	case !l.k.failsHealthFirst && d.health != 200:
		t.Errorf("at the deregister call the health check said %d, want 200 (NLB: keep it passing)", d.health)
	case !sawDown:
		t.Errorf("the health check never turned 503")
	case l.k.failsHealthFirst && down.Sub(sigAt) > time.Second:
		t.Errorf("health check turned 503 only %v after SIGTERM", down.Sub(sigAt))
	case !l.k.failsHealthFirst && down.Before(goneAt):
		t.Errorf("health check turned 503 %v before the NLB finished draining; it must stay 200", goneAt.Sub(down))
	}

	// The load, under the drainLoad model.
	l.load.checkNoFailures(t, goneAt)
	var firstClose, firstRefused time.Time
	var closes, keepAlivesAfter int
	var slowest time.Duration
	evs := l.load.snapshot()
	for _, ev := range evs {
		slowest = max(slowest, ev.at.Sub(ev.start))
		switch {
		case ev.err != nil:
			if firstRefused.IsZero() {
				firstRefused = ev.at
			}
		case ev.closing:
			closes++
			if firstClose.IsZero() {
				firstClose = ev.at
			}
		}
	}
	// Once a client was told to close, every later response it gets (on
	// new connections) says close too: the lazy close does not end.
	told := map[int]bool{}
	for _, ev := range evs { // each client's events are in order
		switch {
		case ev.err != nil:
		case ev.closing:
			told[ev.client] = true
		case told[ev.client]:
			keepAlivesAfter++
		}
	}
	switch {
	case firstClose.IsZero():
		t.Fatal("no response carried Connection: close during the drain")
	case firstClose.Before(goneAt):
		t.Errorf("Connection: close %v before the balancer finished draining", goneAt.Sub(firstClose))
	case keepAlivesAfter > 0:
		t.Errorf("%d responses without Connection: close to clients already told to close", keepAlivesAfter)
	case firstRefused.IsZero():
		t.Errorf("the clients never saw the listener close")
	case firstRefused.Sub(firstClose) < 1500*time.Millisecond:
		t.Errorf("the listener closed %v after the lazy close began, want about --lazy-close 2s", firstRefused.Sub(firstClose))
	}
	t.Logf("SIGTERM +%v deregistered, +%v health 503, +%v balancer drained, +%v first Connection: close (%d in all), +%v listener closed, +%v exit; %d requests, slowest %v",
		deregAt.Sub(sigAt).Round(time.Millisecond), down.Sub(sigAt).Round(time.Millisecond),
		goneAt.Sub(sigAt).Round(time.Millisecond), firstClose.Sub(sigAt).Round(time.Millisecond), closes,
		firstRefused.Sub(sigAt).Round(time.Millisecond), took.Round(time.Millisecond), len(evs), slowest.Round(time.Millisecond))
}

// TestAWSMinuteLongAPIOutage registers one instance with a CLB, an ALB
// target group and an NLB target group at once, then takes the ELB API down
// (503) for a minute, during which an operator deregisters the CLB and NLB
// targets by hand. Traffic and the health check are unaffected; the
// registrar keeps trying with backoff, and afterwards repairs both while
// leaving the ALB registration alone. On SIGTERM, with an NLB among the
// targets, the health check stays 200 through every deregistration.
func TestAWSMinuteLongAPIOutage(t *testing.T) {
	t.Parallel()
	f := newELBFake(t)
	var targets []elbTarget
	args := []string{"run", "--bind-address", "127.0.0.1", "--grace-period", "20s", "--lazy-close", "1s", "--log-format", "text"}
	for _, k := range elbKinds {
		tg := k.setup(f)
		targets = append(targets, tg)
		args = append(args, tg.flag, tg.value)
	}
	bs := startCustomers(t, 2, nil)
	cfg, port, statsPort := seedWithAddresses(t, addrsOf(bs))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	health := fmt.Sprintf("http://127.0.0.1:%d/_haproxy_health_check", statsPort)
	var mu sync.Mutex
	healthAtDereg := map[string][]int{}
	for _, action := range []string{"DeregisterTargets", "DeregisterInstancesFromLoadBalancer"} {
		f.onSuccess(action, func() {
			code, _, _ := probe(health, time.Second)
			mu.Lock()
			healthAtDereg[action] = append(healthAtDereg[action], code)
			mu.Unlock()
		})
	}
	p := startProxyEnv(t, addr, f.env(t), append(args, "--config", cfg)...)
	active := func(i int) bool {
		id, regPort := elbKinds[i].target(f, port)
		return f.active(targets[i].lb, id, regPort)
	}
	waitFor(t, 15*time.Second, "registration with all three", func() bool { return active(0) && active(1) && active(2) })
	load := startDrainLoad(t, "http://"+addr+"/", 2)

	outage := 60 * time.Second
	start := time.Now()
	f.Outage(outage, elbtest.OutageUnavailable)
	time.Sleep(time.Second)
	for _, i := range []int{0, 2} { // CLB, NLB
		id, _ := elbKinds[i].target(f, port)
		if !f.DeregisterOutOfBand(targets[i].lb, id) {
			t.Fatalf("%s: nothing to deregister out of band", elbKinds[i].name)
		}
	}
	for time.Since(start) < outage {
		if code, _, err := probe(health, time.Second); err != nil || code != 200 {
			t.Fatalf("health check during the API outage: %d %v", code, err)
		}
		time.Sleep(min(5*time.Second, outage-time.Since(start)))
	}
	failed := f.answered("ServiceUnavailable")
	if failed < 3 || failed > 100 {
		t.Errorf("%d calls failed during the outage; want at least one per target and a backoff (at most 100)", failed)
	}
	if !active(1) {
		t.Error("the ALB registration did not survive the outage")
	}
	end := time.Now()
	waitFor(t, 75*time.Second, "repair after the outage", func() bool { return active(0) && active(2) })
	t.Logf("%d calls failed during the %v outage; repaired %v after it ended", failed, outage, time.Since(end).Round(time.Millisecond))
	albRegs := 0
	for _, r := range f.successes("RegisterTargets") {
		if r.Params.Get("TargetGroupArn") == targets[1].lb {
			albRegs++
		}
	}
	if albRegs != 1 {
		t.Errorf("%d registrations with the ALB target group, want 1", albRegs)
	}
	for _, tg := range targets {
		waitMetric(t, statsPort, "edgeproxy_aws_target_registered", tg.metric, func(v float64) bool { return v == 1 })
		waitMetric(t, statsPort, "edgeproxy_aws_api_errors_total", tg.metric, func(v float64) bool { return v >= 1 })
	}
	load.end()
	load.checkNoFailures(t, time.Time{})

	took, exitErr := p.sigterm(t, 25*time.Second)
	if exitErr != nil || took >= 20*time.Second {
		t.Errorf("exit %v after SIGTERM: %v, want status 0 within the 20s grace period", took, exitErr)
	}
	mu.Lock()
	defer mu.Unlock()
	got := fmt.Sprint(healthAtDereg)
	if len(healthAtDereg["DeregisterTargets"]) != 2 || len(healthAtDereg["DeregisterInstancesFromLoadBalancer"]) != 1 || strings.Contains(got, "503") {
		t.Errorf("health check at each deregistration: %s; want 200 at all three (an NLB is among the targets)", got)
	}
}
