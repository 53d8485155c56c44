package elb

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/edgeproxy/edgeproxy/elb/elbtest"
)

func imdsAt(url string) func(*imds.Options) {
	return func(o *imds.Options) { o.Endpoint = url }
}

func TestLoadIdentity(t *testing.T) {
	t.Parallel()
	fake := elbtest.New(elbtest.Options{Region: "eu-west-1", Instance: elbtest.Instance{
		ID: "i-0aaaabbbbccccdddd", AvailabilityZone: "eu-west-1b", PrivateIPv4: "172.31.5.6"}})
	defer fake.Close()
	id, err := LoadIdentity(context.Background(), aws.Config{}, imdsAt(fake.IMDSURL()))
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{InstanceID: "i-0aaaabbbbccccdddd", Region: "eu-west-1", AvailabilityZone: "eu-west-1b",
		PrivateIPv4: netip.MustParseAddr("172.31.5.6")}
	if id != want {
		t.Errorf("identity = %+v, want %+v", id, want)
	}
	if st := fake.IMDSStats(); st.TokenPUTs != 1 || st.V1GETs != 0 || st.GETs != 4 {
		t.Errorf("IMDS stats = %+v, want one token for four IMDSv2 GETs", st)
	}
}

// Inside a bridge-networked container with hop limit 1 the token PUT gets
// no answer. The SDK would silently fall back to IMDSv1 (which the fake
// allows here); LoadIdentity must not, and must say what to fix.
func TestLoadIdentityHopLimitTrap(t *testing.T) {
	t.Parallel()
	fake := elbtest.New(elbtest.Options{IMDSv1: true, HopLimit: 1, Hops: 1})
	defer fake.Close()
	_, err := LoadIdentity(context.Background(), aws.Config{}, imdsAt(fake.IMDSURL()),
		func(o *imds.Options) { o.EnableFallback = aws.TrueTernary }) // a caller cannot re-enable it
	if !errors.Is(err, ErrIMDSHopLimit) {
		t.Fatalf("err = %v, want ErrIMDSHopLimit", err)
	}
	for _, s := range []string{"hop-limit", "HttpPutResponseHopLimit 2", "--http-put-response-hop-limit 2", "timeout awaiting response headers"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not mention %q: %v", s, err)
		}
	}
	st := fake.IMDSStats()
	if st.V1GETs != 0 || st.GETs != 0 {
		t.Errorf("IMDSv1 fallback happened: %+v", st)
	}
	if st.TokenPUTs == 0 {
		t.Errorf("no token request seen")
	}

	// The documented fix works.
	fake.SetHopLimit(2)
	id, err := LoadIdentity(context.Background(), aws.Config{}, imdsAt(fake.IMDSURL()))
	if err != nil || id.InstanceID != fake.Instance().ID {
		t.Fatalf("after raising the hop limit: %+v %v", id, err)
	}
}

func TestLoadIdentityUnreachable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	_, err = LoadIdentity(context.Background(), aws.Config{}, imdsAt(url))
	if !errors.Is(err, ErrIMDSUnreachable) || errors.Is(err, ErrIMDSHopLimit) {
		t.Fatalf("err = %v, want ErrIMDSUnreachable", err)
	}
}

// The standard environment variable points the metadata client at the fake.
func TestLoadIdentityEnvEndpoint(t *testing.T) {
	fake := elbtest.New(elbtest.Options{})
	defer fake.Close()
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", fake.IMDSURL())
	id, err := LoadIdentity(context.Background(), aws.Config{})
	if err != nil || id.InstanceID != fake.Instance().ID {
		t.Fatalf("identity %+v, %v", id, err)
	}
}

func TestExplainIMDS(t *testing.T) {
	tests := []struct {
		msg  string
		want error
	}{
		{`operation error ec2imds: GetMetadata, failed to get API token, operation error ec2imds: getToken, exceeded maximum number of attempts, 3, request send failed, Put "http://169.254.169.254/latest/api/token": net/http: timeout awaiting response headers`, ErrIMDSHopLimit},
		{`operation error ec2imds: GetMetadata, failed to get API token, operation error ec2imds: getToken, request send failed, Put "http://169.254.169.254/latest/api/token": dial tcp 169.254.169.254:80: i/o timeout`, ErrIMDSUnreachable},
		{`operation error ec2imds: GetMetadata, failed to get API token, operation error ec2imds: getToken, https response error StatusCode: 403, RequestID: , api error Forbidden`, ErrIMDSTokenRefused},
		{`operation error ec2imds: GetMetadata, http response error StatusCode: 404, request to EC2 IMDS failed`, nil},
	}
	for _, tt := range tests {
		err := explainIMDS("instance-id", errors.New(tt.msg))
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s\n-> %v, want %v", tt.msg, err, tt.want)
		}
		if tt.want == nil && (errors.Is(err, ErrIMDSHopLimit) || errors.Is(err, ErrIMDSUnreachable) || errors.Is(err, ErrIMDSTokenRefused)) {
			t.Errorf("%s\n-> %v, want no classification", tt.msg, err)
		}
		if !strings.Contains(err.Error(), `"instance-id"`) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("error lost context: %v", err)
		}
	}
}
