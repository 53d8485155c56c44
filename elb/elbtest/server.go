// Package elbtest is an in-process fake of the AWS Elastic Load Balancing
// Query API, both the Classic Load Balancer API (version 2012-06-01) and the
// ALB/NLB target group API (version 2015-12-01), and of the EC2 instance
// metadata service with IMDSv2 tokens. The real AWS SDK talks to it over
// loopback HTTP: point AWS_ENDPOINT_URL (or Options.BaseEndpoint) at URL and
// AWS_EC2_METADATA_SERVICE_ENDPOINT (or imds.Options.Endpoint) at IMDSURL.
//
// It follows the documented wire format: form-encoded requests carrying
// Action and Version and signed with SigV4 for "elasticloadbalancing",
// XML responses wrapped in <ActionResponse><ActionResult> with the version's
// namespace, and <ErrorResponse> bodies with AWS error codes. Registrations
// are stateful: targets go through initial/healthy, draining for the
// deregistration delay, then disappear. Faults can be injected: throttling,
// arbitrary error codes, outages (503 or connection refused), out-of-band
// deregistration, deleted load balancers and target groups, and the IMDSv2
// hop-limit trap.
//
// It is a normal package so that end-to-end tests of the edgeproxy binary can
// use it too.
package elbtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Options configures a Server. Zero values give the documented defaults.
type Options struct {
	// Region is the only region the fake accepts in SigV4 credential
	// scopes and the region in ARNs and instance metadata. Default
	// "us-east-1".
	Region string
	// AccountID appears in ARNs and the identity document. Default
	// "123456789012".
	AccountID string
	// Instance is the EC2 instance the metadata service describes. It is
	// also a known instance for registrations.
	Instance Instance

	// IMDSv1 allows metadata GETs without a token (IMDSv1). Default false:
	// they get 401, as on an instance with HttpTokens=required.
	IMDSv1 bool
	// HopLimit is the instance's HttpPutResponseHopLimit. Default 1.
	HopLimit int
	// Hops is the number of network hops between the caller and the
	// metadata service: 0 on the host network, 1 behind a Docker bridge or
	// an overlay. Token PUT responses are dropped (the request hangs until
	// the client gives up) when Hops >= HopLimit, the way their IP TTL
	// runs out on a real instance. Metadata GETs are unaffected.
	Hops int

	// Now is the clock for registration states and token expiry. Default
	// time.Now. Outage durations use real time.
	Now func() time.Time
	// Logf, when set, receives one line per request.
	Logf func(format string, args ...any)
}

// Instance describes the fake EC2 instance.
type Instance struct {
	ID               string // default "i-0123456789abcdef0"
	AvailabilityZone string // default Region + "a"
	PrivateIPv4      string // default "10.0.1.15"
	InstanceType     string // default "m5.large"
	ImageID          string // default "ami-0123456789abcdef0"
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	opts Options

	elb  *endpoint
	imds *endpoint
	done chan struct{}

	mu         sync.Mutex
	clbs       map[string]*clb
	tgs        map[string]*targetGroup
	tgOrder    []string
	instances  map[string]bool
	faults     []*Fault
	outage     time.Time // 503 outage ends (real time)
	requests   []Request
	tokens     map[string]time.Time
	tokenPUTs  int
	imdsV1GETs int
	imdsGETs   int
}

// Request is one ELB API call as the fake saw it.
type Request struct {
	Action  string
	Version string
	Params  url.Values
	// Attempt is the SDK's Amz-Sdk-Request header, "attempt=N; max=M".
	Attempt string
	// Status and Code are the answer: HTTP status and error code ("" on
	// success).
	Status int
	Code   string
	Time   time.Time
}

// New starts a fake on two loopback listeners (ELB API and IMDS). Close it
// when done.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.AccountID == "" {
		opts.AccountID = "123456789012"
	}
	if opts.Instance.ID == "" {
		opts.Instance.ID = "i-0123456789abcdef0"
	}
	if opts.Instance.AvailabilityZone == "" {
		opts.Instance.AvailabilityZone = opts.Region + "a"
	}
	if opts.Instance.PrivateIPv4 == "" {
		opts.Instance.PrivateIPv4 = "10.0.1.15"
	}
	if opts.Instance.InstanceType == "" {
		opts.Instance.InstanceType = "m5.large"
	}
	if opts.Instance.ImageID == "" {
		opts.Instance.ImageID = "ami-0123456789abcdef0"
	}
	if opts.HopLimit == 0 {
		opts.HopLimit = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:      opts,
		done:      make(chan struct{}),
		clbs:      map[string]*clb{},
		tgs:       map[string]*targetGroup{},
		instances: map[string]bool{opts.Instance.ID: true},
		tokens:    map[string]time.Time{},
	}
	s.elb = startEndpoint(http.HandlerFunc(s.serveELB))
	s.imds = startEndpoint(http.HandlerFunc(s.serveIMDS))
	return s
}

// URL is the ELB API endpoint (both API versions), for AWS_ENDPOINT_URL or
// the clients' BaseEndpoint.
func (s *Server) URL() string { return "http://" + s.elb.addr }

// IMDSURL is the instance metadata endpoint, for
// AWS_EC2_METADATA_SERVICE_ENDPOINT or imds.Options.Endpoint.
func (s *Server) IMDSURL() string { return "http://" + s.imds.addr }

// Region returns the fake's region.
func (s *Server) Region() string { return s.opts.Region }

// Instance returns the fake instance's identity.
func (s *Server) Instance() Instance { return s.opts.Instance }

// Close stops both listeners and releases hanging requests.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
		s.mu.Unlock()
		return
	default:
		close(s.done)
	}
	s.mu.Unlock()
	s.elb.close()
	s.imds.close()
}

// Requests returns the ELB API calls seen so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Calls counts the requests for action (all actions when action is ""),
// failed ones included.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if action == "" || r.Action == action {
			n++
		}
	}
	return n
}

// Fault makes ELB API requests fail.
type Fault struct {
	// Action limits the fault to one action; "" matches every action.
	Action string
	// Code is the AWS error code, e.g. "Throttling", "AccessDenied",
	// "TargetGroupNotFound", "ServiceUnavailable".
	Code string
	// Message defaults to a text typical for Code.
	Message string
	// Status defaults by code: 403 for AccessDenied and the signature
	// codes, 500 for InternalFailure, 503 for ServiceUnavailable, else 400
	// (including Throttling, as real ELB sends it).
	Status int
	// Times is how many matching requests fail: 0 means 1, negative means
	// until ClearFaults.
	Times int
}

// InjectFault queues a fault. Faults are checked in the order injected.
func (s *Server) InjectFault(f Fault) {
	if f.Times == 0 {
		f.Times = 1
	}
	if f.Status == 0 {
		f.Status = defaultStatus(f.Code)
	}
	if f.Message == "" {
		f.Message = defaultMessage(f.Code, f.Action)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ThrottleNext answers the next n ELB API requests with 400 Throttling
// "Rate exceeded".
func (s *Server) ThrottleNext(n int) {
	s.InjectFault(Fault{Code: "Throttling", Times: n})
}

// DenyAccess answers every request for action ("" for all) with 403
// AccessDenied until ClearFaults.
func (s *Server) DenyAccess(action string) {
	s.InjectFault(Fault{Action: action, Code: "AccessDenied", Times: -1})
}

// ClearFaults drops all pending faults and ends a 503 outage.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
	s.outage = time.Time{}
}

// OutageMode selects how an outage looks to clients.
type OutageMode int

const (
	// OutageUnavailable answers every ELB API request with a bare 503.
	OutageUnavailable OutageMode = iota
	// OutageRefused closes the ELB API listener, so connections are
	// refused, and reopens it on the same address afterwards.
	OutageRefused
)

// Outage makes the ELB API unavailable for d of real time. The metadata
// service is not affected.
func (s *Server) Outage(d time.Duration, mode OutageMode) {
	switch mode {
	case OutageRefused:
		s.elb.pause(d)
	default:
		s.mu.Lock()
		s.outage = time.Now().Add(d)
		s.mu.Unlock()
	}
}

// takeFault returns the fault to apply to action, if any, and consumes one
// use of it.
func (s *Server) takeFault(action string) *Fault {
	if !s.outage.IsZero() && time.Now().Before(s.outage) {
		return &Fault{Code: "ServiceUnavailable", Status: http.StatusServiceUnavailable}
	}
	for i, f := range s.faults {
		if f.Action != "" && f.Action != action {
			continue
		}
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		c := *f
		return &c
	}
	return nil
}

func defaultStatus(code string) int {
	switch code {
	case "AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch",
		"IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken":
		return http.StatusForbidden
	case "InternalFailure", "HealthUnavailable":
		return http.StatusInternalServerError
	case "ServiceUnavailable":
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

func defaultMessage(code, action string) string {
	switch code {
	case "Throttling", "ThrottlingException":
		return "Rate exceeded"
	case "AccessDenied":
		if action == "" {
			action = "*"
		}
		return fmt.Sprintf("User: arn:aws:sts::123456789012:assumed-role/edgeproxy/i-0123456789abcdef0 is not authorized to perform: elasticloadbalancing:%s", action)
	case "TargetGroupNotFound":
		return "One or more target groups not found"
	case "LoadBalancerNotFound":
		return "There is no ACTIVE Load Balancer named 'unknown'"
	}
	return code
}

func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// endpoint is one loopback HTTP listener that can be stopped and restarted
// on the same address.
type endpoint struct {
	addr    string
	handler http.Handler

	mu     sync.Mutex
	srv    *http.Server
	timer  *time.Timer
	closed bool
}

func startEndpoint(h http.Handler) *endpoint {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("elbtest: listen: %v", err))
	}
	e := &endpoint{addr: ln.Addr().String(), handler: h}
	e.serve(ln)
	return e
}

func (e *endpoint) serve(ln net.Listener) {
	srv := &http.Server{Handler: e.handler, ReadHeaderTimeout: 10 * time.Second}
	e.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// pause closes the listener (and open connections) and reopens it after d.
func (e *endpoint) pause(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	if e.srv != nil {
		_ = e.srv.Close()
		e.srv = nil
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	e.timer = time.AfterFunc(d, e.resume)
}

func (e *endpoint) resume() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.srv != nil {
		return
	}
	// The port was ours a moment ago; retry briefly in case the kernel
	// has not released it yet.
	var ln net.Listener
	var err error
	for i := 0; ; i++ {
		if ln, err = net.Listen("tcp", e.addr); err == nil || i == 50 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		panic(fmt.Sprintf("elbtest: relisten on %s: %v", e.addr, err))
	}
	e.serve(ln)
}

func (e *endpoint) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.timer != nil {
		e.timer.Stop()
	}
	if e.srv != nil {
		_ = e.srv.Close()
		e.srv = nil
	}
}
