package elb

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	clbapi "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	clbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
)

// defaultDelay is AWS's default deregistration delay and CLB connection
// draining timeout, used when the attribute cannot be read.
const defaultDelay = 300 * time.Second

// backend speaks one balancer API for one target.
type backend interface {
	// resolve finds out what to register (id, port), the balancer kind and
	// the deregistration delay.
	resolve(ctx context.Context, id Identity) (resolved, error)
	observe(ctx context.Context, r resolved) (observation, error)
	register(ctx context.Context, r resolved) error
	deregister(ctx context.Context, r resolved) error
}

type resolved struct {
	id    string // instance id or IPv4 address
	port  int    // 0 for CLBs
	kind  Kind
	delay time.Duration
	// delayErr is set when the delay attribute could not be read; delay
	// is then the AWS default.
	delayErr error
}

// String is "id:port", or the id alone for a CLB.
func (r resolved) String() string {
	if r.port == 0 {
		return r.id
	}
	return r.id + ":" + strconv.Itoa(r.port)
}

// observation is the balancer's view of this target.
type observation struct {
	registered bool   // registered and not draining
	draining   bool   // deregistration in progress
	state      string // the balancer's words: "healthy", "InService", ...
	reason     string // reason code or description
}

// clbBackend registers with a Classic Load Balancer (API 2012-06-01).
type clbBackend struct {
	name   string
	client *clbapi.Client
	region func(*clbapi.Options)
}

func (b *clbBackend) instances(r resolved) []clbtypes.Instance {
	return []clbtypes.Instance{{InstanceId: aws.String(r.id)}}
}

func (b *clbBackend) resolve(ctx context.Context, id Identity) (resolved, error) {
	r := resolved{id: id.InstanceID, kind: KindCLB}
	out, err := b.client.DescribeLoadBalancerAttributes(ctx, &clbapi.DescribeLoadBalancerAttributesInput{
		LoadBalancerName: aws.String(b.name),
	}, b.region)
	if err != nil {
		return r, fmt.Errorf("describing CLB %q attributes: %w", b.name, err)
	}
	if a := out.LoadBalancerAttributes; a != nil && a.ConnectionDraining != nil && a.ConnectionDraining.Enabled {
		r.delay = time.Duration(aws.ToInt32(a.ConnectionDraining.Timeout)) * time.Second
	}
	return r, nil
}

func (b *clbBackend) observe(ctx context.Context, r resolved) (observation, error) {
	out, err := b.client.DescribeInstanceHealth(ctx, &clbapi.DescribeInstanceHealthInput{
		LoadBalancerName: aws.String(b.name), Instances: b.instances(r),
	}, b.region)
	if err != nil {
		return observation{}, fmt.Errorf("describing instance health in CLB %q: %w", b.name, err)
	}
	for _, s := range out.InstanceStates {
		if aws.ToString(s.InstanceId) != r.id {
			continue
		}
		o := observation{state: aws.ToString(s.State), reason: aws.ToString(s.Description)}
		desc := strings.ToLower(o.reason)
		switch {
		case strings.Contains(desc, "not currently registered"):
		case strings.Contains(desc, "deregistration currently in progress"):
			o.draining = true
		default:
			// InService, or OutOfService while registering, failing
			// health checks or in an AZ the CLB does not use.
			o.registered = true
		}
		return o, nil
	}
	return observation{state: "OutOfService", reason: "not listed"}, nil
}

func (b *clbBackend) register(ctx context.Context, r resolved) error {
	_, err := b.client.RegisterInstancesWithLoadBalancer(ctx, &clbapi.RegisterInstancesWithLoadBalancerInput{
		LoadBalancerName: aws.String(b.name), Instances: b.instances(r),
	}, b.region)
	if err != nil {
		return fmt.Errorf("registering %q with CLB %q: %w", r.id, b.name, err)
	}
	return nil
}

func (b *clbBackend) deregister(ctx context.Context, r resolved) error {
	_, err := b.client.DeregisterInstancesFromLoadBalancer(ctx, &clbapi.DeregisterInstancesFromLoadBalancerInput{
		LoadBalancerName: aws.String(b.name), Instances: b.instances(r),
	}, b.region)
	if err != nil {
		return fmt.Errorf("deregistering %q from CLB %q: %w", r.id, b.name, err)
	}
	return nil
}

// tgBackend registers with an ALB or NLB target group (API 2015-12-01).
type tgBackend struct {
	tg     TargetGroup
	port   int // Options.Port
	client *elbv2.Client
	region func(*elbv2.Options)
}

// targets is always the exact (Id, Port) pair: deregistering without the
// registered port is a silent no-op (reference, section 2.1).
func (b *tgBackend) targets(r resolved) []v2types.TargetDescription {
	return []v2types.TargetDescription{{Id: aws.String(r.id), Port: aws.Int32(int32(r.port))}}
}

func (b *tgBackend) resolve(ctx context.Context, id Identity) (resolved, error) {
	var r resolved
	out, err := b.client.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{
		TargetGroupArns: []string{b.tg.ARN},
	}, b.region)
	if err != nil {
		return r, fmt.Errorf("describing target group %q: %w", b.tg.ARN, err)
	}
	if len(out.TargetGroups) != 1 {
		return r, permanentError{fmt.Errorf("describing target group %q: %d groups returned", b.tg.ARN, len(out.TargetGroups))}
	}
	g := out.TargetGroups[0]
	r.kind = kindFromProtocol(string(g.Protocol), g.LoadBalancerArns)
	switch g.TargetType {
	case v2types.TargetTypeEnumInstance:
		r.id = id.InstanceID
	case v2types.TargetTypeEnumIp:
		if !id.PrivateIPv4.IsValid() {
			return r, permanentError{fmt.Errorf("target group %q has target type ip, but the instance has no private IPv4 address", b.tg.ARN)}
		}
		r.id = id.PrivateIPv4.String()
	default:
		return r, permanentError{fmt.Errorf("target group %q has target type %q; only instance and ip are supported", b.tg.ARN, g.TargetType)}
	}
	switch {
	case b.tg.Port != 0:
		r.port = b.tg.Port
	case b.port != 0:
		r.port = b.port
	default:
		r.port = int(aws.ToInt32(g.Port))
	}
	if r.port <= 0 || r.port > 65535 {
		return r, permanentError{fmt.Errorf("target group %q: no usable port (group port %d)", b.tg.ARN, aws.ToInt32(g.Port))}
	}
	r.delay, r.delayErr = b.readDelay(ctx)
	return r, nil
}

// readDelay reads deregistration_delay.timeout_seconds.
func (b *tgBackend) readDelay(ctx context.Context) (time.Duration, error) {
	out, err := b.client.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{
		TargetGroupArn: aws.String(b.tg.ARN),
	}, b.region)
	if err != nil {
		return defaultDelay, fmt.Errorf("describing target group %q attributes: %w", b.tg.ARN, err)
	}
	for _, a := range out.Attributes {
		if aws.ToString(a.Key) != "deregistration_delay.timeout_seconds" {
			continue
		}
		n, err := strconv.Atoi(aws.ToString(a.Value))
		if err != nil || n < 0 {
			return defaultDelay, fmt.Errorf("target group %q: deregistration_delay.timeout_seconds %q is not a number of seconds", b.tg.ARN, aws.ToString(a.Value))
		}
		return time.Duration(n) * time.Second, nil
	}
	return defaultDelay, nil
}

func (b *tgBackend) observe(ctx context.Context, r resolved) (observation, error) {
	out, err := b.client.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{
		TargetGroupArn: aws.String(b.tg.ARN), Targets: b.targets(r),
	}, b.region)
	if err != nil {
		return observation{}, fmt.Errorf("describing target health in %q: %w", b.tg.ARN, err)
	}
	for _, d := range out.TargetHealthDescriptions {
		if d.Target == nil || aws.ToString(d.Target.Id) != r.id || int(aws.ToInt32(d.Target.Port)) != r.port || d.TargetHealth == nil {
			continue
		}
		o := observation{state: string(d.TargetHealth.State), reason: string(d.TargetHealth.Reason)}
		switch d.TargetHealth.State {
		case v2types.TargetHealthStateEnumDraining:
			o.draining = true
		case v2types.TargetHealthStateEnumUnused:
			// Target.NotRegistered means absent. Target.NotInUse,
			// InvalidState and IpUnusable are registered but idle.
			o.registered = d.TargetHealth.Reason != v2types.TargetHealthReasonEnumNotRegistered
		default:
			// initial, healthy, unhealthy, unhealthy.draining, unavailable
			o.registered = true
		}
		return o, nil
	}
	return observation{state: "unused", reason: "not listed"}, nil
}

func (b *tgBackend) register(ctx context.Context, r resolved) error {
	_, err := b.client.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{
		TargetGroupArn: aws.String(b.tg.ARN), Targets: b.targets(r),
	}, b.region)
	if err != nil {
		return fmt.Errorf("registering %s with %q: %w", r, b.tg.ARN, err)
	}
	return nil
}

func (b *tgBackend) deregister(ctx context.Context, r resolved) error {
	_, err := b.client.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{
		TargetGroupArn: aws.String(b.tg.ARN), Targets: b.targets(r),
	}, b.region)
	if err != nil {
		return fmt.Errorf("deregistering %s from %q: %w", r, b.tg.ARN, err)
	}
	return nil
}
