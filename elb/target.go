package elb

import (
	"fmt"
	"strings"
)

// Target is a load balancer this instance registers with: a CLB or a
// TargetGroup.
type Target interface {
	// String names the target in logs and Status: "clb/NAME" or the ARN.
	String() string
	validate() error
}

// CLB is a Classic Load Balancer, by name. The instance registers by
// instance id; the port is the CLB listener's InstancePort.
type CLB struct {
	Name string
}

func (c CLB) String() string { return "clb/" + c.Name }

func (c CLB) validate() error {
	if c.Name == "" || len(c.Name) > 32 {
		return fmt.Errorf("elb: CLB name %q must be 1 to 32 characters", c.Name)
	}
	for _, r := range c.Name {
		if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("elb: CLB name %q may only contain letters, digits and hyphens", c.Name)
		}
	}
	return nil
}

// TargetGroup is an ALB or NLB target group, by ARN. The registrar reads its
// target type (instance or ip) and port with DescribeTargetGroups and
// registers the instance id or the private IPv4 address accordingly.
type TargetGroup struct {
	ARN string
	// Port is the port to register. Zero means Options.Port (the
	// frontend's bind port), and when that is zero too, the target group's
	// own port.
	Port int
}

func (g TargetGroup) String() string { return g.ARN }

func (g TargetGroup) validate() error {
	// arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID
	parts := strings.SplitN(g.ARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "elasticloadbalancing" ||
		!strings.HasPrefix(parts[5], "targetgroup/") {
		return fmt.Errorf("elb: %q is not a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)", g.ARN)
	}
	if g.Port < 0 || g.Port > 65535 {
		return fmt.Errorf("elb: target group %q: port %d out of range", g.ARN, g.Port)
	}
	return nil
}

// Kind is the kind of load balancer in front of a target.
type Kind int

// Kinds. KindUnknown is a target group whose description has not been read
// yet (or whose protocol is neither ALB's nor NLB's).
const (
	KindUnknown Kind = iota
	KindCLB
	KindALB
	KindNLB
)

func (k Kind) String() string {
	switch k {
	case KindCLB:
		return "clb"
	case KindALB:
		return "alb"
	case KindNLB:
		return "nlb"
	}
	return "unknown"
}

// MayFailHealthCheck reports whether the shutdown sequence may flip the
// health check to failing before deregistering. That is safe behind CLBs
// and ALBs, but an NLB by default resets established connections to a
// target that turns unhealthy
// (target_health_state.unhealthy.connection_termination.enabled=true), so
// behind an NLB, or when the kind is not known yet, the answer is false:
// deregister and keep the health check passing.
func (k Kind) MayFailHealthCheck() bool { return k == KindCLB || k == KindALB }

// kindFromProtocol maps a target group protocol to its balancer kind.
func kindFromProtocol(protocol string, lbARNs []string) Kind {
	switch strings.ToUpper(protocol) {
	case "HTTP", "HTTPS":
		return KindALB
	case "TCP", "TLS", "UDP", "TCP_UDP", "QUIC", "TCP_QUIC":
		return KindNLB
	}
	for _, a := range lbARNs {
		switch {
		case strings.Contains(a, ":loadbalancer/app/"):
			return KindALB
		case strings.Contains(a, ":loadbalancer/net/"):
			return KindNLB
		}
	}
	return KindUnknown
}
