package elb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// Identity is what the registrar needs to know about the EC2 instance it
// runs on.
type Identity struct {
	InstanceID       string     // "i-0123456789abcdef0": the id for CLBs and instance target groups
	Region           string     // "us-east-1"
	AvailabilityZone string     // "us-east-1a"
	PrivateIPv4      netip.Addr // the id for ip target groups; invalid when the instance has none
}

// Errors from LoadIdentity, wrapped around the SDK's error.
var (
	// ErrIMDSHopLimit: the IMDSv2 token PUT got no answer. The error text
	// says how to fix it.
	ErrIMDSHopLimit = errors.New("the IMDSv2 token request (PUT /latest/api/token) got no answer: " +
		"this is the IMDSv2 hop-limit trap (the instance's HttpPutResponseHopLimit is 1 while edgeproxy runs " +
		"one network hop from the host, on a container bridge or overlay network, so the reply's IP TTL runs out); " +
		"fix it with `aws ec2 modify-instance-metadata-options --instance-id <id> --http-put-response-hop-limit 2 " +
		"--http-tokens required` (HttpPutResponseHopLimit 2) or run the task with host networking; " +
		"edgeproxy does not fall back to IMDSv1")
	// ErrIMDSUnreachable: nothing answers at the metadata endpoint (not on
	// EC2, metadata service disabled, or a firewall).
	ErrIMDSUnreachable = errors.New("the instance metadata service is unreachable (not running on EC2, " +
		"instance metadata disabled, or a firewall); pass the identity in instead or set AWS_EC2_METADATA_SERVICE_ENDPOINT")
	// ErrIMDSTokenRefused: the token PUT was answered with an error, so
	// IMDSv2 is not available there, and edgeproxy does not use IMDSv1.
	ErrIMDSTokenRefused = errors.New("the instance metadata service refused the IMDSv2 token request; " +
		"edgeproxy does not fall back to IMDSv1")
)

// LoadIdentity reads the instance identity from the EC2 instance metadata
// service with IMDSv2 only: EnableFallback is forced off, so a failing token
// request is an error, never a silent IMDSv1 request. The client honours
// cfg's standard settings (AWS_EC2_METADATA_SERVICE_ENDPOINT, ...); optFns
// can adjust it further (tests set Endpoint).
func LoadIdentity(ctx context.Context, cfg aws.Config, optFns ...func(*imds.Options)) (Identity, error) {
	fns := append([]func(*imds.Options){func(o *imds.Options) { o.EnableFallback = aws.FalseTernary }}, optFns...)
	// Callers' option functions must not turn the fallback back on.
	fns = append(fns, func(o *imds.Options) { o.EnableFallback = aws.FalseTernary })
	c := imds.NewFromConfig(cfg, fns...)

	get := func(path string) (string, error) {
		out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			return "", explainIMDS(path, err)
		}
		defer out.Content.Close()
		b, err := io.ReadAll(io.LimitReader(out.Content, 4096))
		if err != nil {
			return "", fmt.Errorf("elb: reading instance metadata %q: %w", path, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	var id Identity
	var err error
	if id.InstanceID, err = get("instance-id"); err != nil {
		return Identity{}, err
	}
	if !strings.HasPrefix(id.InstanceID, "i-") {
		return Identity{}, fmt.Errorf("elb: instance metadata instance-id %q is not an instance id", id.InstanceID)
	}
	if id.AvailabilityZone, err = get("placement/availability-zone"); err != nil {
		return Identity{}, err
	}
	if id.Region, err = get("placement/region"); err != nil {
		return Identity{}, err
	}
	ip, err := get("local-ipv4")
	switch {
	case err == nil:
		a, perr := netip.ParseAddr(ip)
		if perr != nil || !a.Is4() {
			return Identity{}, fmt.Errorf("elb: instance metadata local-ipv4 %q is not an IPv4 address", ip)
		}
		id.PrivateIPv4 = a
	case httpStatus(err) == 404:
		// IPv6-only instance: fine unless an ip target group needs it.
	default:
		return Identity{}, err
	}
	return id, nil
}

// explainIMDS turns the SDK's IMDS errors into ones that say what is wrong.
// The token error is wrapped by the SDK in a type without Unwrap, so the
// cases are told apart by their text (see the reference, section 1.2).
func explainIMDS(path string, err error) error {
	msg := err.Error()
	if !strings.Contains(msg, "failed to get API token") {
		return fmt.Errorf("elb: reading instance metadata %q: %w", path, err)
	}
	var kind error
	switch {
	case strings.Contains(msg, "dial tcp") || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "no route to host") || strings.Contains(msg, "network is unreachable"):
		kind = ErrIMDSUnreachable
	case strings.Contains(msg, "timeout awaiting response headers") || strings.Contains(msg, "deadline exceeded") ||
		strings.Contains(msg, "Client.Timeout") || strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset"):
		kind = ErrIMDSHopLimit
	case strings.Contains(msg, "StatusCode: 403") || strings.Contains(msg, "StatusCode: 404") ||
		strings.Contains(msg, "StatusCode: 405") || strings.Contains(msg, "StatusCode: 400"):
		kind = ErrIMDSTokenRefused
	default:
		return fmt.Errorf("elb: reading instance metadata %q: IMDSv2 token: %w", path, err)
	}
	return fmt.Errorf("elb: reading instance metadata %q: %w (%w)", path, kind, err)
}

// httpStatus returns the HTTP status code carried by err, or 0.
func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
