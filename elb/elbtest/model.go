package elbtest

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// NoDelay is a DeregistrationDelay, DrainingTimeout or DrainFor of zero:
// the zero value of those fields means the AWS default instead.
const NoDelay time.Duration = -1

// defaultDelay is the AWS default deregistration delay and CLB connection
// draining timeout.
const defaultDelay = 300 * time.Second

// CLBConfig describes a Classic Load Balancer.
type CLBConfig struct {
	// Name is the load balancer name (required).
	Name string
	// ConnectionDraining enables connection draining, with DrainingTimeout
	// (zero: the AWS default of 300 s).
	ConnectionDraining bool
	DrainingTimeout    time.Duration
	// DrainFor is how long a deregistered instance keeps showing
	// "InService: Instance deregistration currently in progress." Zero:
	// DrainingTimeout when draining is enabled, else none. (A real CLB
	// ends early when the instance has no connections.)
	DrainFor time.Duration
	// IdleTimeout is reported in ConnectionSettings. Zero: 60 s.
	IdleTimeout time.Duration
	// HealthyAfter is how long a new instance shows "OutOfService:
	// Instance registration is still in progress." before InService.
	HealthyAfter time.Duration
	// AvailabilityZones defaults to the fake instance's zone.
	AvailabilityZones []string
}

// TargetGroupConfig describes an ALB or NLB target group.
type TargetGroupConfig struct {
	// Name is the target group name (required); the ARN is derived.
	Name string
	// TargetType is "instance" (default) or "ip".
	TargetType string
	// Port is the target group's port. Default 80.
	Port int
	// LoadBalancerType is "application" (default) or "network": it picks
	// the default Protocol and the load balancer ARN.
	LoadBalancerType string
	// Protocol defaults to HTTP for application, TCP for network.
	Protocol string
	// DeregistrationDelay is deregistration_delay.timeout_seconds; zero
	// means the AWS default of 300 s, NoDelay means 0.
	DeregistrationDelay time.Duration
	// DrainFor is how long a deregistered target shows "draining". Zero:
	// DeregistrationDelay (ALB shows draining for the whole delay).
	DrainFor time.Duration
	// HealthyAfter is how long a new target shows "initial" before
	// "healthy".
	HealthyAfter time.Duration
	// ProxyProtocolV2 is reported as proxy_protocol_v2.enabled.
	ProxyProtocolV2 bool
}

// Registration is one registered target as the fake sees it now.
type Registration struct {
	ID   string
	Port int // 0 for CLB instances
	// State is the balancer's word: for target groups initial, healthy or
	// draining; for CLBs InService or OutOfService.
	State string
	// Reason is the target group reason code or the CLB description.
	Reason string
}

type clb struct {
	cfg       CLBConfig
	instances map[string]*registration
	order     []string
}

type targetGroup struct {
	cfg     TargetGroupConfig
	arn     string
	lbARN   string
	targets map[string]*registration // key id + "/" + port
}

type registration struct {
	id         string
	port       int
	az         string
	registered time.Time
	drainUntil time.Time // non-zero while draining
}

func resolveDelay(d, def time.Duration) time.Duration {
	switch {
	case d == NoDelay:
		return 0
	case d == 0:
		return def
	}
	return d
}

// CreateCLB adds a Classic Load Balancer. It panics on a duplicate name.
func (s *Server) CreateCLB(c CLBConfig) {
	if c.Name == "" {
		panic("elbtest: CLBConfig.Name is empty")
	}
	c.DrainingTimeout = resolveDelay(c.DrainingTimeout, defaultDelay)
	switch {
	case c.DrainFor != 0:
		c.DrainFor = resolveDelay(c.DrainFor, 0)
	case c.ConnectionDraining:
		c.DrainFor = c.DrainingTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if len(c.AvailabilityZones) == 0 {
		c.AvailabilityZones = []string{s.opts.Instance.AvailabilityZone}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.clbs[c.Name]; dup {
		panic(fmt.Sprintf("elbtest: CLB %q exists", c.Name))
	}
	s.clbs[c.Name] = &clb{cfg: c, instances: map[string]*registration{}}
}

// CreateTargetGroup adds a target group and returns its ARN.
func (s *Server) CreateTargetGroup(c TargetGroupConfig) string {
	if c.Name == "" {
		panic("elbtest: TargetGroupConfig.Name is empty")
	}
	if c.TargetType == "" {
		c.TargetType = "instance"
	}
	if c.Port == 0 {
		c.Port = 80
	}
	if c.LoadBalancerType == "" {
		c.LoadBalancerType = "application"
	}
	short := "app"
	if c.LoadBalancerType == "network" {
		short = "net"
		if c.Protocol == "" {
			c.Protocol = "TCP"
		}
	}
	if c.Protocol == "" {
		c.Protocol = "HTTP"
	}
	c.DeregistrationDelay = resolveDelay(c.DeregistrationDelay, defaultDelay)
	c.DrainFor = resolveDelay(c.DrainFor, c.DeregistrationDelay)
	prefix := fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:", s.opts.Region, s.opts.AccountID)
	tg := &targetGroup{
		cfg:     c,
		arn:     prefix + "targetgroup/" + c.Name + "/" + newID(8),
		lbARN:   prefix + "loadbalancer/" + short + "/" + c.Name + "-lb/" + newID(8),
		targets: map[string]*registration{},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tgs[tg.arn] = tg
	s.tgOrder = append(s.tgOrder, tg.arn)
	return tg.arn
}

// DeleteLoadBalancer removes a CLB: later calls get LoadBalancerNotFound.
func (s *Server) DeleteLoadBalancer(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clbs, name)
}

// DeleteTargetGroup removes a target group: later calls get
// TargetGroupNotFound.
func (s *Server) DeleteTargetGroup(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tgs, arn)
	for i, a := range s.tgOrder {
		if a == arn {
			s.tgOrder = append(s.tgOrder[:i], s.tgOrder[i+1:]...)
			break
		}
	}
}

// AddInstance makes an instance id known, so it can be registered. The
// fake's own Instance is always known.
func (s *Server) AddInstance(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[id] = true
}

// Registrations lists the targets of a CLB (by name) or a target group (by
// ARN), draining ones included, sorted by id and port. It returns nil for
// an unknown balancer.
func (s *Server) Registrations(lb string) []Registration {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	var out []Registration
	if c, ok := s.clbs[lb]; ok {
		for _, r := range c.live(now) {
			st, desc, _ := c.health(r, now)
			out = append(out, Registration{ID: r.id, State: st, Reason: desc})
		}
		return out
	}
	if tg, ok := s.tgs[lb]; ok {
		for _, r := range tg.live(now) {
			st, reason, _ := tg.health(r, now)
			out = append(out, Registration{ID: r.id, Port: r.port, State: st, Reason: reason})
		}
	}
	return out
}

// DeregisterOutOfBand removes id from a CLB or target group the way an
// operator's console click would: the target drains for the configured
// time, then disappears. It reports whether anything was registered.
func (s *Server) DeregisterOutOfBand(lb, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	found := false
	if c, ok := s.clbs[lb]; ok {
		for _, r := range c.live(now) {
			if r.id == id && r.drainUntil.IsZero() {
				c.deregister(r, now)
				found = true
			}
		}
	}
	if tg, ok := s.tgs[lb]; ok {
		for _, r := range tg.live(now) {
			if r.id == id && r.drainUntil.IsZero() {
				tg.deregister(r, now)
				found = true
			}
		}
	}
	return found
}

// live drops instances whose draining has ended and returns the rest in
// registration order.
func (c *clb) live(now time.Time) []*registration {
	kept := c.order[:0]
	var out []*registration
	for _, id := range c.order {
		r := c.instances[id]
		if !r.drainUntil.IsZero() && !now.Before(r.drainUntil) {
			delete(c.instances, id)
			continue
		}
		kept = append(kept, id)
		out = append(out, r)
	}
	c.order = kept
	return out
}

// health returns State, Description and ReasonCode for a live instance.
func (c *clb) health(r *registration, now time.Time) (state, desc, reason string) {
	switch {
	case !r.drainUntil.IsZero():
		return "InService", "Instance deregistration currently in progress.", "N/A"
	case now.Before(r.registered.Add(c.cfg.HealthyAfter)):
		return "OutOfService", "Instance registration is still in progress.", "ELB"
	}
	return "InService", "N/A", "N/A"
}

func (c *clb) register(id string, now time.Time) {
	if r, ok := c.instances[id]; ok {
		if !r.drainUntil.IsZero() {
			r.drainUntil = time.Time{}
			r.registered = now
		}
		return
	}
	c.instances[id] = &registration{id: id, registered: now}
	c.order = append(c.order, id)
}

func (c *clb) deregister(r *registration, now time.Time) {
	if c.cfg.DrainFor <= 0 {
		r.drainUntil = now // gone at the next look
		return
	}
	r.drainUntil = now.Add(c.cfg.DrainFor)
}

func (tg *targetGroup) live(now time.Time) []*registration {
	var out []*registration
	for k, r := range tg.targets {
		if !r.drainUntil.IsZero() && !now.Before(r.drainUntil) {
			delete(tg.targets, k)
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].id != out[j].id {
			return out[i].id < out[j].id
		}
		return out[i].port < out[j].port
	})
	return out
}

// health returns State, Reason and Description for a live target.
func (tg *targetGroup) health(r *registration, now time.Time) (state, reason, desc string) {
	switch {
	case !r.drainUntil.IsZero():
		return "draining", "Target.DeregistrationInProgress", "Target deregistration is in progress"
	case now.Before(r.registered.Add(tg.cfg.HealthyAfter)):
		return "initial", "Elb.RegistrationInProgress", "Target registration is in progress"
	}
	return "healthy", "", ""
}

func (tg *targetGroup) register(id string, port int, az string, now time.Time) {
	k := fmt.Sprintf("%s/%d", id, port)
	if r, ok := tg.targets[k]; ok {
		if !r.drainUntil.IsZero() {
			r.drainUntil = time.Time{}
			r.registered = now
		}
		return
	}
	tg.targets[k] = &registration{id: id, port: port, az: az, registered: now}
}

func (tg *targetGroup) deregister(r *registration, now time.Time) {
	if tg.cfg.DrainFor <= 0 {
		delete(tg.targets, fmt.Sprintf("%s/%d", r.id, r.port))
		return
	}
	r.drainUntil = now.Add(tg.cfg.DrainFor)
}

// validTarget checks a target id against the group's target type.
func (s *Server) validTarget(tg *targetGroup, id, action string) (code, msg string) {
	switch tg.cfg.TargetType {
	case "ip":
		if _, err := netip.ParseAddr(id); err != nil {
			return "ValidationError", fmt.Sprintf("The IP address '%s' is not a valid IPv4 address", id)
		}
	default:
		if !strings.HasPrefix(id, "i-") {
			return "ValidationError", fmt.Sprintf("Instance ID '%s' is not valid", id)
		}
		if !s.instances[id] && action == "RegisterTargets" {
			return "InvalidTarget", fmt.Sprintf("The following targets are not in a running state and cannot be registered: '%s'", id)
		}
		if !s.instances[id] {
			return "InvalidTarget", fmt.Sprintf("The following instances do not exist: '%s'", id)
		}
	}
	return "", ""
}
