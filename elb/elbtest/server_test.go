package elbtest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	clb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing"
	clbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancing/types"
	elbv2 "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	v2types "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/smithy-go"

	"github.com/edgeproxy/edgeproxy/elb/elbtest"
)

func newFake(t *testing.T, opts elbtest.Options) *elbtest.Server {
	t.Helper()
	s := elbtest.New(opts)
	t.Cleanup(s.Close)
	return s
}

// sdkConfig points the real SDK at the fake with static credentials and a
// fast retry backoff.
func sdkConfig(s *elbtest.Server) aws.Config {
	return aws.Config{
		Region:       s.Region(),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		BaseEndpoint: aws.String(s.URL()),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
			})
		},
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestCLBWire(t *testing.T) {
	ctx := context.Background()
	s := newFake(t, elbtest.Options{})
	s.CreateCLB(elbtest.CLBConfig{Name: "edge-clb", ConnectionDraining: true, DrainingTimeout: 120 * time.Second, DrainFor: elbtest.NoDelay})
	c := clb.NewFromConfig(sdkConfig(s))
	id := s.Instance().ID

	out, err := c.RegisterInstancesWithLoadBalancer(ctx, &clb.RegisterInstancesWithLoadBalancerInput{
		LoadBalancerName: aws.String("edge-clb"), Instances: []clbtypes.Instance{{InstanceId: aws.String(id)}},
	})
	if err != nil || len(out.Instances) != 1 || aws.ToString(out.Instances[0].InstanceId) != id {
		t.Fatalf("register: %+v %v", out, err)
	}
	h, err := c.DescribeInstanceHealth(ctx, &clb.DescribeInstanceHealthInput{
		LoadBalancerName: aws.String("edge-clb"), Instances: []clbtypes.Instance{{InstanceId: aws.String(id)}},
	})
	if err != nil || len(h.InstanceStates) != 1 || aws.ToString(h.InstanceStates[0].State) != "InService" {
		t.Fatalf("health: %+v %v", h, err)
	}
	a, err := c.DescribeLoadBalancerAttributes(ctx, &clb.DescribeLoadBalancerAttributesInput{LoadBalancerName: aws.String("edge-clb")})
	if err != nil {
		t.Fatal(err)
	}
	if d := a.LoadBalancerAttributes.ConnectionDraining; !d.Enabled || aws.ToInt32(d.Timeout) != 120 {
		t.Errorf("draining = %+v", d)
	}
	if got := aws.ToInt32(a.LoadBalancerAttributes.ConnectionSettings.IdleTimeout); got != 60 {
		t.Errorf("idle timeout = %d", got)
	}
	lbs, err := c.DescribeLoadBalancers(ctx, &clb.DescribeLoadBalancersInput{LoadBalancerNames: []string{"edge-clb"}})
	if err != nil || len(lbs.LoadBalancerDescriptions) != 1 || len(lbs.LoadBalancerDescriptions[0].Instances) != 1 {
		t.Fatalf("describe lbs: %+v %v", lbs, err)
	}
	if _, err := c.DeregisterInstancesFromLoadBalancer(ctx, &clb.DeregisterInstancesFromLoadBalancerInput{
		LoadBalancerName: aws.String("edge-clb"), Instances: []clbtypes.Instance{{InstanceId: aws.String(id)}},
	}); err != nil {
		t.Fatal(err)
	}
	h, err = c.DescribeInstanceHealth(ctx, &clb.DescribeInstanceHealthInput{
		LoadBalancerName: aws.String("edge-clb"), Instances: []clbtypes.Instance{{InstanceId: aws.String(id)}},
	})
	if err != nil || aws.ToString(h.InstanceStates[0].State) != "OutOfService" ||
		!strings.Contains(aws.ToString(h.InstanceStates[0].Description), "not currently registered") {
		t.Fatalf("health after deregister: %+v %v", h, err)
	}

	// Modeled errors arrive as the SDK's typed errors.
	_, err = c.DescribeInstanceHealth(ctx, &clb.DescribeInstanceHealthInput{LoadBalancerName: aws.String("absent")})
	var nf *clbtypes.AccessPointNotFoundException
	if !errors.As(err, &nf) || apiCode(err) != "LoadBalancerNotFound" {
		t.Errorf("absent LB: %v", err)
	}
	_, err = c.RegisterInstancesWithLoadBalancer(ctx, &clb.RegisterInstancesWithLoadBalancerInput{
		LoadBalancerName: aws.String("edge-clb"), Instances: []clbtypes.Instance{{InstanceId: aws.String("i-00000000000000bad")}},
	})
	var inv *clbtypes.InvalidEndPointException
	if !errors.As(err, &inv) || apiCode(err) != "InvalidInstance" {
		t.Errorf("bad instance: %v", err)
	}

	// The wire format the SDK sent.
	reqs := s.Requests()
	if reqs[0].Action != "RegisterInstancesWithLoadBalancer" || reqs[0].Version != "2012-06-01" ||
		reqs[0].Params.Get("Instances.member.1.InstanceId") != id || reqs[0].Params.Get("LoadBalancerName") != "edge-clb" {
		t.Errorf("first request = %+v", reqs[0])
	}
}

func TestTargetGroupWire(t *testing.T) {
	ctx := context.Background()
	s := newFake(t, elbtest.Options{})
	arn := s.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "edge-tg", TargetType: "ip", Port: 8443,
		LoadBalancerType: "network", DeregistrationDelay: 30 * time.Second, ProxyProtocolV2: true, DrainFor: time.Hour})
	c := elbv2.NewFromConfig(sdkConfig(s))

	tgs, err := c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{arn}})
	if err != nil || len(tgs.TargetGroups) != 1 {
		t.Fatalf("describe: %+v %v", tgs, err)
	}
	tg := tgs.TargetGroups[0]
	if tg.TargetType != v2types.TargetTypeEnumIp || aws.ToInt32(tg.Port) != 8443 || tg.Protocol != v2types.ProtocolEnumTcp ||
		len(tg.LoadBalancerArns) != 1 || !strings.Contains(tg.LoadBalancerArns[0], ":loadbalancer/net/") {
		t.Errorf("target group = %+v", tg)
	}
	attrs, err := c.DescribeTargetGroupAttributes(ctx, &elbv2.DescribeTargetGroupAttributesInput{TargetGroupArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range attrs.Attributes {
		got[aws.ToString(a.Key)] = aws.ToString(a.Value)
	}
	if got["deregistration_delay.timeout_seconds"] != "30" || got["proxy_protocol_v2.enabled"] != "true" {
		t.Errorf("attributes = %v", got)
	}

	target := []v2types.TargetDescription{{Id: aws.String("10.0.1.15"), Port: aws.Int32(8443)}}
	if _, err := c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: target}); err != nil {
		t.Fatal(err)
	}
	state := func() (string, string) {
		t.Helper()
		h, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn), Targets: target})
		if err != nil || len(h.TargetHealthDescriptions) != 1 {
			t.Fatalf("health: %+v %v", h, err)
		}
		d := h.TargetHealthDescriptions[0]
		return string(d.TargetHealth.State), string(d.TargetHealth.Reason)
	}
	if st, _ := state(); st != "healthy" {
		t.Errorf("state after register = %s", st)
	}
	if _, err := c.DeregisterTargets(ctx, &elbv2.DeregisterTargetsInput{TargetGroupArn: aws.String(arn), Targets: target}); err != nil {
		t.Fatal(err)
	}
	if st, reason := state(); st != "draining" || reason != "Target.DeregistrationInProgress" {
		t.Errorf("state after deregister = %s %s", st, reason)
	}
	if regs := s.Registrations(arn); len(regs) != 1 || regs[0].State != "draining" || regs[0].Port != 8443 {
		t.Errorf("registrations = %+v", regs)
	}
	other := []v2types.TargetDescription{{Id: aws.String("10.0.1.16"), Port: aws.Int32(8443)}}
	h, err := c.DescribeTargetHealth(ctx, &elbv2.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn), Targets: other})
	if err != nil || h.TargetHealthDescriptions[0].TargetHealth.State != "unused" ||
		h.TargetHealthDescriptions[0].TargetHealth.Reason != "Target.NotRegistered" {
		t.Errorf("unregistered target: %+v %v", h, err)
	}

	// Errors.
	_, err = c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn + "x"), Targets: target})
	var nf *v2types.TargetGroupNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("absent TG: %v", err)
	}
	_, err = c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(arn),
		Targets: []v2types.TargetDescription{{Id: aws.String("i-0123456789abcdef0")}}})
	if apiCode(err) != "ValidationError" {
		t.Errorf("instance id in ip group: %v", err)
	}
	itg := s.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "inst"})
	_, err = c.RegisterTargets(ctx, &elbv2.RegisterTargetsInput{TargetGroupArn: aws.String(itg),
		Targets: []v2types.TargetDescription{{Id: aws.String("i-00000000000000bad")}}})
	var it *v2types.InvalidTargetException
	if !errors.As(err, &it) {
		t.Errorf("unknown instance: %v", err)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	s := newFake(t, elbtest.Options{})
	arn := s.CreateTargetGroup(elbtest.TargetGroupConfig{Name: "tg"})
	cfg := sdkConfig(s)
	c := elbv2.NewFromConfig(cfg)
	describe := func() error {
		_, err := c.DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{TargetGroupArns: []string{arn}})
		return err
	}

	// Two throttles: the SDK's standard retryer absorbs them.
	s.ThrottleNext(2)
	if err := describe(); err != nil {
		t.Fatalf("after 2 throttles: %v", err)
	}
	reqs := s.Requests()
	if len(reqs) != 3 || reqs[0].Code != "Throttling" || reqs[0].Status != 400 || reqs[2].Attempt != "attempt=3; max=3" {
		t.Errorf("requests = %+v", reqs)
	}
	// More throttles than attempts: the error says Throttling.
	s.ThrottleNext(3)
	if err := describe(); apiCode(err) != "Throttling" {
		t.Errorf("3 throttles: %v", err)
	}
	s.InjectFault(elbtest.Fault{Action: "DescribeTargetGroups", Code: "ThrottlingException", Times: 3})
	if err := describe(); apiCode(err) != "ThrottlingException" {
		t.Errorf("ThrottlingException: %v", err)
	}
	s.DenyAccess("DescribeTargetGroups")
	err := describe()
	var re interface{ HTTPStatusCode() int }
	if apiCode(err) != "AccessDenied" || !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
		t.Errorf("denied: %v", err)
	}
	s.ClearFaults()

	s.Outage(time.Hour, elbtest.OutageUnavailable)
	err = describe()
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable {
		t.Errorf("503 outage: %v", err)
	}
	s.ClearFaults()
	if err := describe(); err != nil {
		t.Errorf("after outage: %v", err)
	}

	s.Outage(300*time.Millisecond, elbtest.OutageRefused)
	if err := describe(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("refused outage: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for describe() != nil {
		if time.Now().After(deadline) {
			t.Fatal("listener did not come back after the outage")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Wrong region in the credential scope.
	wrong := cfg.Copy()
	wrong.Region = "eu-west-1"
	_, err = elbv2.NewFromConfig(wrong).DescribeTargetGroups(ctx, &elbv2.DescribeTargetGroupsInput{})
	if apiCode(err) != "SignatureDoesNotMatch" {
		t.Errorf("wrong region: %v", err)
	}
	// Unsigned request.
	resp, err := http.PostForm(s.URL(), map[string][]string{"Action": {"DescribeTargetGroups"}, "Version": {"2015-12-01"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "<Code>MissingAuthenticationToken</Code>") ||
		!strings.Contains(string(body), `xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"`) {
		t.Errorf("unsigned: %d %s", resp.StatusCode, body)
	}
}

func TestIMDS(t *testing.T) {
	ctx := context.Background()
	s := newFake(t, elbtest.Options{IMDSv1: true})
	c := imds.New(imds.Options{Endpoint: s.IMDSURL(), EnableFallback: aws.FalseTernary})
	for path, want := range map[string]string{
		"instance-id":                 "i-0123456789abcdef0",
		"placement/availability-zone": "us-east-1a",
		"placement/region":            "us-east-1",
		"local-ipv4":                  "10.0.1.15",
	} {
		out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(out.Content)
		out.Content.Close()
		if string(b) != want {
			t.Errorf("%s = %q, want %q", path, b, want)
		}
	}
	doc, err := c.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil || doc.InstanceID != "i-0123456789abcdef0" || doc.PrivateIP != "10.0.1.15" || doc.Region != "us-east-1" {
		t.Fatalf("identity document: %+v %v", doc, err)
	}
	if st := s.IMDSStats(); st.TokenPUTs != 1 || st.V1GETs != 0 || st.GETs != 5 {
		t.Errorf("stats = %+v, want 1 token PUT for 5 GETs", st)
	}

	// A tokenless GET is IMDSv1: allowed here, 401 by default.
	resp, err := http.Get(s.IMDSURL() + "/latest/meta-data/instance-id")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("v1 GET: %v %v", resp, err)
	}
	resp.Body.Close()
	strict := newFake(t, elbtest.Options{})
	resp, err = http.Get(strict.IMDSURL() + "/latest/meta-data/instance-id")
	if err != nil || resp.StatusCode != 401 {
		t.Fatalf("v1 GET on a v2-only instance: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodPut, strict.IMDSURL()+"/latest/api/token", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("token PUT without TTL: %v %v", resp, err)
	}
	resp.Body.Close()
}
